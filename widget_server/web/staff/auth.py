"""Signing in and out, and one's own account: a new password, or ending every other session."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from widget_server import messages
from widget_server.errors import Invalid, NotAllowed, RateLimited, WidgetError
from widget_server.security import passwords
from widget_server.services import audit
from widget_server.services.accounts import hashed
from widget_server.web.staff.common import (
    Staff,
    check_csrf,
    error_page,
    password_cost,
    posted,
    redirect,
    render,
    safe_next,
    services_of,
    signed_in,
    staff_state,
    staff_view,
    store_of,
)
from widget_server.web.staff.sessions import COOKIE, LOGIN_COOKIE, clear_cookie, set_cookie


def _login_form(request: Request, message: str = "", email: str = "", status_code: int = 200) -> Response:
    secret, cookie = staff_state(request).sessions.new_login_secret()
    response = render(
        request,
        "login.html",
        {
            "csrf": secret,
            "message": message,
            "email": email,
            "next": safe_next(request.query_params.get("next", "/admin")),
        },
        status_code,
    )
    set_cookie(response, request, LOGIN_COOKIE, cookie, 3600)
    return response


async def login_page(request: Request) -> Response:
    """GET /admin/login."""
    if await signed_in(request) is not None:
        return redirect(safe_next(request.query_params.get("next", "/admin")))
    ended = request.cookies.get(COOKIE) is not None
    response = _login_form(request, messages.STAFF_SESSION_ENDED if ended else "")
    if ended:
        clear_cookie(response, request, COOKIE)
    return response


async def login(request: Request) -> Response:
    """POST /admin/login: CSRF-checked, rate-limited; every attempt audited."""
    services, store, state = services_of(request), store_of(request), staff_state(request)
    form = await posted(request)
    try:
        check_csrf(request, form, state.sessions.login_secret(request) or "")
    except WidgetError as exc:
        return error_page(request, exc)
    email = form.get("email", "").strip()
    client = request.client.host if request.client else "unknown"
    try:
        user = await state.sign_in.check(store, email, form.get("password", ""), services.client_keys.key(client))
    except (NotAllowed, RateLimited) as exc:
        known = await store.staff_user_by_email(email.lower()) is not None
        await audit.record(
            store,
            email.lower() if known else "unknown account",
            "login failed",
            detail="held: too many failures" if isinstance(exc, RateLimited) else "",
        )
        response = _login_form(request, exc.message, email, 429 if isinstance(exc, RateLimited) else 400)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    session = state.sessions.new(user, services.clock())
    await audit.record(store, user.email, "login")
    response = redirect(safe_next(form.get("next", "/admin")))
    set_cookie(response, request, COOKIE, state.sessions.dumps(session), None)
    clear_cookie(response, request, LOGIN_COOKIE)
    return response


@staff_view("read")
async def logout(staff: Staff) -> Response:
    """POST /admin/logout."""
    await staff.audit("logout")
    response = _login_form(staff.request, messages.STAFF_LOGGED_OUT)
    clear_cookie(response, staff.request, COOKIE)
    staff.ended = True
    return response


@staff_view("read")
async def account_page(staff: Staff) -> Response:
    """GET /admin/account."""
    return staff.render("account.html", {"min_length": passwords.MIN_LENGTH})


@staff_view("read")
async def change_password(staff: Staff) -> Response:
    """POST /admin/account/password: the current password, then the new one twice."""
    form = staff.form
    message = ""
    try:
        if not passwords.verify_password(form.get("current", ""), staff.user.password_hash):
            raise Invalid(messages.STAFF_PASSWORD_WRONG)
        if form.get("new", "") != form.get("again", ""):
            raise Invalid(messages.STAFF_PASSWORD_MISMATCH)
        user = await staff.store.set_staff_password(
            staff.user.id, await hashed(form.get("new", ""), password_cost(staff.request))
        )
    except Invalid as exc:
        message = exc.message
        return staff.render("account.html", {"min_length": passwords.MIN_LENGTH, "error": message}, 400)
    await staff.audit("password changed", subject=user.email)
    # Every other session has ended with the old epoch; this one carries on under the new one.
    staff.replacement = staff_state(staff.request).sessions.new(user, staff.now)
    return staff.render("account.html", {"min_length": passwords.MIN_LENGTH, "done": "Your password is changed."})


@staff_view("read")
async def end_sessions(staff: Staff) -> Response:
    """POST /admin/account/sessions: sign out everywhere else."""
    user = await staff.store.end_staff_sessions(staff.user.id)
    await staff.audit("sessions ended", subject=user.email)
    staff.replacement = staff_state(staff.request).sessions.new(user, staff.now)
    return staff.render(
        "account.html", {"min_length": passwords.MIN_LENGTH, "done": "Every other session has been signed out."}
    )
