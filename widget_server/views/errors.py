"""One handler for every WidgetError: a human sentence as HTML, or JSON of one fixed shape."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import TokenError, TooManyRequests, WidgetError
from ..headers import csp

log = logging.getLogger(__name__)


def wants_json(request: Request) -> bool:
    # scope["path"] is request.url.path without building a whole URL object per request.
    return request.scope["path"].startswith("/api/") or "application/json" in request.headers.get(
        "accept", ""
    )


async def widget_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WidgetError)
    # A revoked or replaced token was genuinely issued for these origins: let the
    # partner's own page show why the form is gone instead of a blank refused frame.
    origins = exc.origins if isinstance(exc, TokenError) else ()
    return error_response(request, exc, origins)


def error_response(request: Request, exc: WidgetError, frame_ancestors: tuple[str, ...] = ()) -> Response:
    """The human sentence as HTML or JSON; framable only by `frame_ancestors` (none by default)."""
    headers = {}
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    if frame_ancestors:
        headers["Content-Security-Policy"] = csp(frame_ancestors)
    if exc.status >= 500:
        log.error("%s %s answered %d: %s", request.method, request.url.path, exc.status, exc.message)
    if wants_json(request):
        body = {"error": {"status": exc.status, "message": exc.message}}
        return JSONResponse(body, status_code=exc.status, headers=headers)
    templates = request.app.state.templates
    return templates.TemplateResponse(  # type: ignore[no-any-return]
        request, "error.html", {"message": exc.message}, status_code=exc.status, headers=headers
    )


_ROUTER_MESSAGES = {
    404: "There is nothing at this address.",
    405: "This address does not accept that kind of request.",
}


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 from the router, answered in the same shape as ours."""
    assert isinstance(exc, HTTPException)
    error = WidgetError(_ROUTER_MESSAGES.get(exc.status_code, "That request could not be handled."))
    error.status = exc.status_code
    return await widget_error(request, error)
