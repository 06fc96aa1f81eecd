"""What the views share: settings, the cached catalog, the writer, tokens, limits, the clock, the
signing use case built from them, and the confirmation links' use case."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from widget_server.security.ratelimit import ClientKeys, RateLimiter
from widget_server.security.tokens import Tokens
from widget_server.services.confirmation import Confirmation
from widget_server.services.signing import Signing
from widget_server.settings import Settings
from widget_server.storage.catalog import Catalog
from widget_server.storage.writer import SignatureWriter


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
    # The app's one Confirmation (its emails, their links), built by the lifespan with the store;
    # the confirmation pages make one without a mailer if the app has none.
    confirmation: Confirmation | None = None
    signing: Signing = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.signing = Signing(
            settings=self.settings,
            catalog=self.catalog,
            writer=self.writer,
            tokens=self.tokens,
            partner_limiter=self.partner_limiter,
            clock=self.clock,
        )
