"""GET and POST /confirm/{token}: the page a confirmation email links to, and its one button.

GET shows the pledge's title and a button, and confirms nothing: mail scanners and link previews
fetch every link in an email. The button POSTs to the same address, with nothing in its body (the
token, in the path, is the whole request), and the signature counts. Both are pages of this
service's own origin, never framed, never cached, never indexed, setting no cookie.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from widget_server import messages
from widget_server.services.confirmation import Confirmation, LinkExpired, duration
from widget_server.web.edge.headers import csp
from widget_server.web.runtime import Services

# Gone: the link has expired or was used up, and asking again will not change that.
EXPIRED_STATUS = 410
_HEADERS = {
    "Content-Security-Policy": csp(),
    "Cache-Control": "no-store",
    # The token is in the address: keep it out of search engines (Referrer-Policy keeps it from sites).
    "X-Robots-Tag": "noindex, nofollow",
}


async def confirm_page(request: Request) -> Response:
    """GET /confirm/{token}: the pledge's title and the button."""
    services: Services = request.app.state.services
    token = request.path_params["token"]
    try:
        pledge = await _confirmation(request).page(token)
    except LinkExpired as exc:
        return _expired(request, exc)
    retention = duration(services.settings.confirm_retention_hours)
    return _page(request, {"state": "ask", "pledge": pledge, "token": token, "retention": retention})


async def confirm(request: Request) -> Response:
    """POST /confirm/{token}: count the signature (once, however often it is pressed)."""
    try:
        done = await _confirmation(request).confirm(request.path_params["token"])
    except LinkExpired as exc:
        return _expired(request, exc)
    message = messages.CONFIRMED if done.state == "confirmed" else messages.CONFIRMED_ALREADY
    return _page(request, {"state": done.state, "pledge": done.pledge, "total": done.total, "message": message})


def _confirmation(request: Request) -> Confirmation:
    """The app's Confirmation; the pages need no mailer, so one is made for them if the app has none."""
    services: Services = request.app.state.services
    if services.confirmation is None:
        services.confirmation = Confirmation(
            request.app.state.store,
            services.settings,
            services.tokens,
            on_commit=services.catalog.counts_committed,
            clock=services.clock,
        )
    return services.confirmation


def _expired(request: Request, exc: LinkExpired) -> Response:
    return _page(request, {"state": "expired", "pledge": None, "message": exc.message}, EXPIRED_STATUS)


def _page(request: Request, values: dict[str, object], status_code: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request, "confirm.html", values, status_code=status_code, headers=_HEADERS
    )
