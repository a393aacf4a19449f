"""Where a request comes from, as the poisoning screen counts it: the client's network, not its address.

A browser id costs nothing (a new cookie); an address costs more, and a whole network far more. So each prediction and
label is stored with the network of the address that sent it: the /24 of an IPv4 address, the /48 of an IPv6 one.
A /64 is what one household or phone gets, but a customer is commonly handed a /56 or a whole /48, so one person can
rotate through 65,536 /64s: the /48 is what they cannot multiply for free. `make retrain` screens and caps feedback
per network as well as per browser (training/screen.py, docs/security.md). The full address is not kept.
"""

from __future__ import annotations

import ipaddress

PREFIX = {4: 24, 6: 48}


def network_of(address: str | None) -> str | None:
    """'203.0.113.7' -> '203.0.113.0/24', '2001:db8::1' -> '2001:db8::/48'; None for no or an unparsable address
    (a test client, a unix socket)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ipaddress.ip_network(f"{ip}/{PREFIX[ip.version]}", strict=False))
