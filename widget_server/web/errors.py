"""The one place errors meet HTTP: each WidgetError's status, and one handler that answers with a
human sentence as HTML, or as JSON of one fixed shape."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from widget_server import messages
from widget_server.errors import (
    ConfigError,
    Conflict,
    Invalid,
    NotAllowed,
    NotFound,
    RateLimited,
    TokenError,
    Unavailable,
    WidgetError,
)
from widget_server.web.edge.headers import csp

log = logging.getLogger(__name__)


class PayloadTooLarge(WidgetError):
    """A request body over the limit (an HTTP matter: the domain never sees the body)."""


class UnsupportedMediaType(WidgetError):
    """A post that is not a web form."""


class HTTPStatusError(WidgetError):
    """An answer of the router's own (404, 405), carrying its status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# Most specific first: the first class an error is an instance of decides its status.
_STATUS: tuple[tuple[type[WidgetError], int], ...] = (
    (PayloadTooLarge, 413),
    (UnsupportedMediaType, 415),
    (RateLimited, 429),
    (NotFound, 404),
    (NotAllowed, 403),
    (Conflict, 409),
    (Invalid, 400),
    (Unavailable, 503),
    (ConfigError, 500),
)


def status_of(exc: WidgetError) -> int:
    """The HTTP status a domain error is answered with."""
    if isinstance(exc, HTTPStatusError):
        return exc.status
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def wants_json(request: Request) -> bool:
    # scope["path"] is request.url.path without building a whole URL object per request, and the
    # first Accept header, read from the scope, is request.headers["accept"] without a Headers.
    scope = request.scope
    if scope["path"].startswith("/api/"):
        return True
    for name, value in scope["headers"]:
        if name == b"accept":
            return b"application/json" in value
    return False


async def widget_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WidgetError)
    # A revoked or replaced token was genuinely issued for these origins: let the
    # partner's own page show why the form is gone instead of a blank refused frame.
    origins = exc.origins if isinstance(exc, TokenError) else ()
    return error_response(request, exc, origins)


def error_response(request: Request, exc: WidgetError, frame_ancestors: tuple[str, ...] = ()) -> Response:
    """The human sentence as HTML or JSON; framable only by `frame_ancestors` (none by default)."""
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if frame_ancestors:
        headers["Content-Security-Policy"] = csp(frame_ancestors)
    status = status_of(exc)
    if status >= 500:
        log.error("%s %s answered %d: %s", request.method, request.url.path, status, exc.message)
    if wants_json(request):
        body = {"error": {"status": status, "message": exc.message}}
        return JSONResponse(body, status_code=status, headers=headers)
    templates = request.app.state.templates
    return templates.TemplateResponse(  # type: ignore[no-any-return]
        request, "error.html", {"message": exc.message}, status_code=status, headers=headers
    )


_ROUTER_MESSAGES = {404: messages.NO_SUCH_ADDRESS, 405: messages.WRONG_METHOD}


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 from the router, answered in the same shape as ours."""
    assert isinstance(exc, HTTPException)
    error = HTTPStatusError(_ROUTER_MESSAGES.get(exc.status_code, messages.UNHANDLED), exc.status_code)
    return await widget_error(request, error)
