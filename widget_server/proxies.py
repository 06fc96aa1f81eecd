"""Believe X-Forwarded-For and X-Forwarded-Proto only when they come from a configured proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import ConfigError


def _networks(trusted: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        return [ipaddress.ip_network(entry, strict=False) for entry in trusted]
    except ValueError as exc:
        raise ConfigError(f"WIDGET_TRUSTED_PROXIES has a bad address: {exc}.") from None


class TrustedProxyMiddleware:
    def __init__(self, app: ASGIApp, trusted: Iterable[str]) -> None:
        self.app = app
        self.networks = _networks(trusted)

    def _trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and self.networks and client and self._trusted(client[0]):
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
        await self.app(scope, receive, send)
