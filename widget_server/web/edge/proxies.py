"""Believe X-Forwarded-For and X-Forwarded-Proto only when they come from a configured proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

from widget_server.errors import ConfigError


def _networks(trusted: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        return [ipaddress.ip_network(entry, strict=False) for entry in trusted]
    except ValueError as exc:
        raise ConfigError(f"WIDGET_TRUSTED_PROXIES has a bad address: {exc}.") from None


class TrustedProxies:
    """The configured proxies; `resolve` rewrites a request's client and scheme from their headers."""

    def __init__(self, trusted: Iterable[str]) -> None:
        self.networks = _networks(trusted)

    def _trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def resolve(self, scope: Scope) -> Scope:
        """The scope as the client made it, or unchanged when the peer is not one of our proxies."""
        client = scope.get("client")
        if not (self.networks and client and self._trusted(client[0])):
            return scope
        headers = dict(scope["headers"])
        forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        # The nearest hop that is not one of our proxies is the client; anything further
        # left was written by the client itself and proves nothing.
        for hop in reversed(hops):
            if not self._trusted(hop):
                scope = {**scope, "client": (hop, 0)}
                break
        proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").strip().lower()
        if proto in ("http", "https"):
            scope = {**scope, "scheme": proto}
        return scope
