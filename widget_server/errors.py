"""The errors the service explains to a person: each carries a human sentence and nothing else.

They say what went wrong in the domain's terms; the web edge (web/errors.py) alone decides which
HTTP status and which page or JSON shape each one becomes, and the CLI prints the sentence.
"""

from __future__ import annotations


class WidgetError(Exception):
    """Base of every error the service explains to a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(WidgetError):
    """The operator's configuration (settings, database file) cannot be used."""


class Invalid(WidgetError):
    """What was sent cannot be accepted as it is."""


class NotAllowed(WidgetError):
    """The caller may not do this (wrong site, revoked partner, cross-site post)."""


class NotFound(WidgetError):
    """There is no such pledge, partner, organisation or address."""


class RateLimited(WidgetError):
    """Too many attempts; `retry_after` is the whole seconds to wait."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(WidgetError):
    """The service cannot do it just now (the database is unreachable, a restart is under way)."""


class Conflict(Invalid):
    """The thing already exists (a pledge slug, a partner name): storage's unique guard said so."""


class TokenError(NotAllowed):
    """A partner token that is tampered with, revoked or rotated out.

    `origins` is set when the token's signature was good (revoked or rotated), so the
    error page may still be shown inside that partner's own pages.
    """

    def __init__(self, message: str, origins: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.origins = origins
