"""What the views share: settings, the cached catalog, the writer, tokens, limits and the clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from widget_server.security.ratelimit import ClientKeys, RateLimiter
from widget_server.security.tokens import Tokens
from widget_server.settings import Settings
from widget_server.storage.catalog import Catalog
from widget_server.storage.writer import SignatureWriter


def iso_utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z"
    )


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    writer: SignatureWriter
    tokens: Tokens
    client_keys: ClientKeys
    client_limiter: RateLimiter
    partner_limiter: RateLimiter
    # Wall-clock seconds; tests pass a fake one instead of sleeping.
    clock: Callable[[], float] = field(default=time.time)

    # The last second utc_now formatted: in a surge thousands of signatures share each one.
    _second: int = field(default=-1, init=False, repr=False)
    _stamp: str = field(default="", init=False, repr=False)

    def utc_now(self) -> str:
        """Now, to the second, as stored with each signature."""
        second = int(self.clock())
        if second != self._second:
            self._second, self._stamp = second, iso_utc(second)
        return self._stamp
