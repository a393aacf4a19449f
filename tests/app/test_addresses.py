"""The network a request is counted under by the poisoning screen (app/addresses.py)."""

import pytest

from app.addresses import network_of


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.7", "203.0.113.0/24"),
        ("127.0.0.1", "127.0.0.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),  # an IPv4 client of a dual-stack socket
        ("testclient", None),
        ("", None),
        (None, None),
    ],
)
def test_network_of(address, network):
    assert network_of(address) == network
