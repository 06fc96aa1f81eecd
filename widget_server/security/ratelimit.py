"""Rate limits per client and per partner, keyed without ever keeping an IP address.

A client key is an HMAC of its IP under a key that lives only in memory and changes every UTC
day: a plain hash of an IPv4 address could be reversed by trying all 2**32. The day's key is
derived from the service's secret key, so every server process, on every host, keys a client
the same way (their limits add up to one budget) without any process having to share state.
An IPv6 client is keyed by its /64 network: one home connection or phone is given a whole /64
and can pick a fresh address in it for every request.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import secrets
from collections.abc import Callable

from widget_server.errors import ConfigError
from widget_server.memo import BoundedMemo

_UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$")
KEY_LIFETIME = 86400.0


def parse_rate(text: str) -> tuple[int, float] | None:
    """'30/minute' → (30, 60.0); 'off' → None."""
    if text.strip().lower() == "off":
        return None
    match = _RATE.match(text.lower())
    if not match or int(match.group(1)) < 1:
        raise ConfigError(f"A rate limit looks like '30/minute' or 'off', not {text!r}.")
    return int(match.group(1)), _UNITS[match.group(2)]


def client_network(host: str) -> str:
    """What one client controls: its IPv4 address, or its IPv6 /64 (IPv4-mapped → IPv4)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def divided(rate: tuple[int, float] | None, processes: int) -> tuple[int, float] | None:
    """One process's share of a rate limit that `processes` processes enforce between them."""
    if rate is None or processes <= 1:
        return rate
    limit, period = rate
    return max(1, limit // processes), period


class ClientKeys:
    """Keyed hashes of client networks under a key of the day, derived from `secret`."""

    def __init__(self, clock: Callable[[], float], secret: str | bytes | None = None) -> None:
        self._clock = clock
        # Without a secret (tests of the limiter alone) the key is random to this process.
        self._secret = secret.encode() if isinstance(secret, str) else secret or secrets.token_bytes(32)
        self._day = -1
        self._key = b""
        # Every signature asks (the key is also its abuse mark), and a client signs from one
        # address: the day's answers are remembered, bounded, and forgotten with the day's key.
        self._known: BoundedMemo[str, str] = BoundedMemo(max_entries=50_000, max_bytes=16 * 1024 * 1024)

    def key(self, ip: str) -> str:
        day = int(self._clock() // KEY_LIFETIME)
        if day != self._day:
            self._day = day
            self._key = hmac.new(self._secret, b"client-keys:%d" % day, hashlib.sha256).digest()
            self._known.clear()
        found = self._known.get(ip)
        if found is None:
            found = self._known.put(
                ip, hmac.new(self._key, client_network(ip).encode(), hashlib.sha256).hexdigest()[:32]
            )
        return found


class RateLimiter:
    """A token bucket per key: `limit` at once, refilled at `limit` per `period` seconds."""

    MAX_KEYS = 100_000

    def __init__(self, rate: tuple[int, float] | None, clock: Callable[[], float]) -> None:
        self.rate = rate
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def hit(self, key: str) -> int:
        """Take one token: 0 when allowed, else the whole seconds to wait (for Retry-After)."""
        return self._check(key, take=True)

    def waiting(self, key: str) -> int:
        """What `hit` would answer now, without taking a token."""
        return self._check(key, take=False)

    def _check(self, key: str, take: bool) -> int:
        if self.rate is None:
            return 0
        limit, period = self.rate
        per_second = limit / period
        now = self._clock()
        tokens, last = self._buckets.get(key, (float(limit), now))
        tokens = min(float(limit), tokens + (now - last) * per_second)
        if tokens >= 1.0:
            if take:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > self.MAX_KEYS:
                    self._prune(now, per_second, limit)
            return 0
        if take:
            self._buckets[key] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / per_second))

    def _prune(self, now: float, per_second: float, limit: int) -> None:
        """Forget buckets that have refilled: they behave exactly like new ones."""
        self._buckets = {
            key: (tokens, last)
            for key, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * per_second < limit
        }
