"""Where TorchServe listens: config.properties with the settings' TS_* overrides applied.

The one place this is computed: the supervisor (`make run`) writes TorchServe's effective configuration from
`effective_config`, and every client (the page, the CLI, the container's health check) reads its addresses from
`endpoints`, so both sides always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from settings import Settings


def read_properties(text: str) -> dict[str, str]:
    """Parse the simple key=value lines of a Java properties file (comments and blanks ignored)."""
    properties = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, _, value = line.partition("=")
            properties[key.strip()] = value.strip()
    return properties


def apply_overrides(text: str, overrides: dict[str, str]) -> str:
    """The properties text with the given keys replaced (or appended when absent)."""
    lines, seen = [], set()
    for line in text.splitlines():
        key = line.partition("=")[0].strip()
        if key in overrides and not line.lstrip().startswith("#"):
            lines.append(f"{key}={overrides[key]}")
            seen.add(key)
        else:
            lines.append(line)
    lines += [f"{key}={value}" for key, value in overrides.items() if key not in seen]
    return "\n".join(lines) + "\n"


def address_overrides(
    *, host: str | None = None, inference: int | None = None, management: int | None = None, metrics: int | None = None
) -> dict[str, str]:
    """Property overrides for the three REST addresses (and gRPC's host) from settings; None keeps the template."""
    overrides = {}
    if host:
        overrides["grpc_inference_address"] = overrides["grpc_management_address"] = host
    for key, port in (
        ("inference_address", inference),
        ("management_address", management),
        ("metrics_address", metrics),
    ):
        if host or port:
            overrides[key] = f"http://{host or '{host}'}:{port or '{port}'}"
    return overrides


def resolve_addresses(properties: dict[str, str], overrides: dict[str, str]) -> dict[str, str]:
    """Fill the {host}/{port} placeholders address_overrides leaves, from the template's own addresses."""
    resolved = dict(overrides)
    for key, value in overrides.items():
        if key.endswith("_address") and "{" in value:
            template = urlsplit(properties[key])
            resolved[key] = value.format(host=template.hostname, port=template.port)
    return resolved


def configure(template: str, overrides: dict[str, str]) -> str:
    """The effective properties text: the template with the overrides (placeholders resolved) applied."""
    return apply_overrides(template, resolve_addresses(read_properties(template), overrides))


def settings_overrides(settings: Settings) -> dict[str, str]:
    """The config.properties overrides the settings ask for (TS_HOST, TS_*_PORT, TS_PROPERTIES)."""
    overrides = address_overrides(
        host=settings.ts_host,
        inference=settings.ts_inference_port,
        management=settings.ts_management_port,
        metrics=settings.ts_metrics_port,
    )
    overrides.update(settings.ts_properties)
    return overrides


def effective_config(settings: Settings) -> str:
    """The configuration TorchServe is started with: settings.ts_config with the settings' overrides."""
    return configure(settings.ts_config.read_text(), settings_overrides(settings))


@dataclass(frozen=True)
class Endpoints:
    inference: str
    management: str
    metrics: str

    @classmethod
    def from_properties(cls, properties: dict[str, str]) -> Endpoints:
        return cls(
            inference=properties["inference_address"].rstrip("/"),
            management=properties["management_address"].rstrip("/"),
            metrics=properties["metrics_address"].rstrip("/"),
        )


def endpoints(settings: Settings) -> Endpoints:
    """TorchServe's three REST addresses as the settings describe them."""
    return Endpoints.from_properties(read_properties(effective_config(settings)))


def local_url(address: str) -> str:
    """An address TorchServe listens on, as a client on the same host reaches it (0.0.0.0 -> 127.0.0.1)."""
    parts = urlsplit(address)
    if parts.hostname in ("0.0.0.0", "::", "[::]"):
        parts = parts._replace(netloc=f"127.0.0.1:{parts.port}")
    return urlunsplit(parts).rstrip("/")
