"""What every staff page shares: who is signed in, what their role allows, CSRF, rendering.

`staff_view(capability)` wraps a page: no session → the sign-in page (303); a role without
the capability → 403; a POST without the session's CSRF token, or from another site → 403.
Every answer is `no-store` and refreshes the session's "last used" time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from widget_server import messages
from widget_server.core.models import Pledge
from widget_server.core.times import iso_utc
from widget_server.errors import NotAllowed, RateLimited, WidgetError
from widget_server.security.passwords import DEFAULT_COST, Cost
from widget_server.services import accounts, audit
from widget_server.services.accounts import SignIn
from widget_server.services.pledges import find_pledge
from widget_server.settings import Settings
from widget_server.storage.store import StaffUser, Store
from widget_server.web.errors import status_of
from widget_server.web.runtime import Services
from widget_server.web.staff.sessions import COOKIE, Session, Sessions, clear_cookie, same_secret, set_cookie

log = logging.getLogger(__name__)


class StaffState:
    """The staff area's own state in one server process: cookie signing and sign-in limits."""

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self.sessions = Sessions(settings.signing_keys())
        self.sign_in = SignIn(clock)


def staff_state(request: Request) -> StaffState:
    state = getattr(request.app.state, "staff", None)
    if state is None:
        services = services_of(request)
        state = request.app.state.staff = StaffState(services.settings, services.clock)
    assert isinstance(state, StaffState)
    return state


def services_of(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def store_of(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


@dataclass
class Staff:
    """One signed-in request: the request, the account, its session and the posted form."""

    request: Request
    user: StaffUser
    session: Session
    form: Mapping[str, str] = field(default_factory=dict)
    replacement: Session | None = None  # a new session cookie to send (a password change)
    ended: bool = False  # signed out: send no session cookie back

    @property
    def store(self) -> Store:
        return store_of(self.request)

    @property
    def services(self) -> Services:
        return services_of(self.request)

    @property
    def now(self) -> float:
        return self.services.clock()

    def can(self, capability: str) -> bool:
        return accounts.can(self.user.role, capability)

    async def pledge(self) -> Pledge:
        return await find_pledge(self.store, self.request.path_params["slug"])

    async def audit(self, action: str, *, pledge: str = "", subject: str = "", detail: str = "") -> None:
        await audit.record(
            self.store, self.user.email, action, pledge=pledge, subject=subject, detail=detail, at=iso_utc(self.now)
        )

    def render(self, template: str, context: dict[str, Any] | None = None, status_code: int = 200) -> Response:
        return render(self.request, template, {"staff": self, **(context or {})}, status_code)


def when(stamp: str | None) -> str:
    """'2026-11-30T10:07:00Z' → '2026-11-30 10:07 UTC'; a bare hour → '2026-11-30 10:00 UTC'."""
    if not stamp:
        return "–"
    if len(stamp) == 13:
        return f"{stamp[:10]} {stamp[11:13]}:00 UTC"
    return f"{stamp[:10]} {stamp[11:16]} UTC"


def percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    templates = request.app.state.templates
    context = {"when": when, "percent": percent, "staff": None, **context}
    response: Response = templates.TemplateResponse(request, f"staff/{template}", context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def safe_next(url: str) -> str:
    """Where to go after signing in: a staff page of this site, never another site."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin") or url.startswith("//"):
        return "/admin"
    return url


def _from_this_site(request: Request) -> bool:
    """False for a request a browser says came from another site (Sec-Fetch-Site, Origin)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    # Under the pages' `Referrer-Policy: no-referrer` a browser sends `Origin: null` with its own
    # form posts, so "null" says nothing either way: Sec-Fetch-Site and the token decide.
    if origin is None or origin == "null":
        return True
    return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


async def posted(request: Request) -> dict[str, str]:
    async with request.form(max_files=0, max_fields=200) as data:
        return _strings(data)


def _strings(data: FormData) -> dict[str, str]:
    return {k: v for k, v in data.items() if isinstance(v, str)}


def check_csrf(request: Request, form: Mapping[str, str], expected: str) -> None:
    if not _from_this_site(request) or not same_secret(form.get("csrf", ""), expected):
        raise NotAllowed(messages.STAFF_CSRF)


async def signed_in(request: Request) -> tuple[StaffUser, Session] | None:
    """The account and session of the request's cookie, if it is valid now."""
    state = staff_state(request)
    session = state.sessions.loads(request.cookies.get(COOKIE, ""))
    if session is None or not session.current(services_of(request).clock(), services_of(request).settings):
        return None
    user = await store_of(request).staff_user_by_id(session.user_id)
    if user is None or not session.valid_for(user):
        return None
    return user, session


Handler = Callable[[Staff], Awaitable[Response]]


def staff_view(capability: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            found = await signed_in(request)
            if found is None:
                response = redirect("/admin/login?next=" + quote(request.url.path, safe="/"))
                if request.cookies.get(COOKIE):
                    clear_cookie(response, request, COOKIE)
                return response
            user, session = found
            staff = Staff(request, user, session)
            try:
                if request.method == "POST":
                    staff.form = await posted(request)
                    check_csrf(request, staff.form, session.csrf)
                if not staff.can(capability):
                    raise NotAllowed(messages.STAFF_FORBIDDEN.format(role=user.role))
                response = await handler(staff)
            except WidgetError as exc:
                response = error_page(request, exc, staff)
            state = staff_state(request)
            fresh = staff.replacement or state.sessions.touched(session, staff.now)
            if fresh is not None and not staff.ended:
                set_cookie(response, request, COOKIE, state.sessions.dumps(fresh), None)
            response.headers["Cache-Control"] = "no-store"
            return response

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap


def error_page(request: Request, exc: WidgetError, staff: Staff | None = None) -> Response:
    status = status_of(exc)
    if status >= 500:
        log.error("%s %s answered %d: %s", request.method, request.url.path, status, exc.message)
    response = render(request, "error.html", {"staff": staff, "message": exc.message}, status)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def number(text: str, what: str) -> int | None:
    """A whole number typed into a form ("1,000" too), or None for an empty box."""
    from widget_server.errors import Invalid

    cleaned = text.replace(",", "").replace(" ", "").strip()
    if not cleaned:
        return None
    if not cleaned.isdigit():
        raise Invalid(messages.STAFF_NOT_A_NUMBER.format(what=what))
    return int(cleaned)


def confirmed(staff: Staff) -> bool:
    return staff.form.get("confirmed") == "yes"


def confirm_page(staff: Staff, title: str, consequence: str, button: str, back: str) -> Response:
    """The "are you sure" step: the same post again, with confirmed=yes, from a page that says
    what will happen."""
    kept = {k: v for k, v in staff.form.items() if k not in ("csrf", "confirmed")}
    return staff.render(
        "confirm.html",
        {
            "title": title,
            "consequence": consequence,
            "button": button,
            "back": back,
            "action": staff.request.url.path,
            "kept": kept,
        },
    )


def password_cost(request: Request) -> Cost:
    """The KDF cost for new passwords: the default, unless the app was built for the tests with
    a cheaper one (tests/staff/conftest.py); a server never sets it."""
    cost = getattr(request.app.state, "staff_password_cost", DEFAULT_COST)
    assert isinstance(cost, Cost)
    return cost
