"""A small error hierarchy: each error carries its HTTP status and a human sentence.

One handler (views/errors.py) renders them as HTML or as JSON of one fixed shape.
"""

from __future__ import annotations


class WidgetError(Exception):
    """Base of every error the service explains to a person."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(WidgetError):
    status = 500


class BadRequest(WidgetError):
    status = 400


class Forbidden(WidgetError):
    status = 403


class NotFound(WidgetError):
    status = 404


class UnsupportedMediaType(WidgetError):
    status = 415


class PayloadTooLarge(WidgetError):
    status = 413


class TooManyRequests(WidgetError):
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(WidgetError):
    status = 503


class TokenError(Forbidden):
    """A partner token that is tampered with, revoked or rotated out.

    `origins` is set when the token's signature was good (revoked or rotated), so the
    error page may still be shown inside that partner's own pages.
    """

    def __init__(self, message: str, origins: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.origins = origins
