"""Staff accounts, for owners: add one with a first password, change a role, remove one."""

from __future__ import annotations

from starlette.responses import Response

from widget_server.errors import Conflict, Invalid, NotFound
from widget_server.security import passwords
from widget_server.services import accounts
from widget_server.web.staff.common import Staff, confirm_page, confirmed, password_cost, staff_view


async def _page(staff: Staff, status_code: int = 200, **extra: object) -> Response:
    context = {"users": await staff.store.staff_users(), "roles": accounts.ROLES, "min_length": passwords.MIN_LENGTH}
    return staff.render("users.html", {**context, **extra}, status_code)


@staff_view("own")
async def users_page(staff: Staff) -> Response:
    """GET /admin/users."""
    return await _page(staff)


@staff_view("own")
async def add(staff: Staff) -> Response:
    """POST /admin/users: a new account with the first password the owner hands over."""
    form = staff.form
    try:
        user = await accounts.add_user(
            staff.store,
            form.get("email", ""),
            form.get("role", ""),
            form.get("password", ""),
            password_cost(staff.request),
        )
    except (Invalid, Conflict) as exc:
        return await _page(staff, 400, error=exc.message, values=form)
    await staff.audit("user added", subject=user.email, detail=user.role)
    return await _page(staff, done=f"Added {user.email} as {user.role}. They can change the password once signed in.")


@staff_view("own")
async def change_role(staff: Staff) -> Response:
    """POST /admin/users/role."""
    try:
        user = await accounts.change_role(staff.store, staff.form.get("email", ""), staff.form.get("role", ""))
    except (Invalid, NotFound) as exc:
        return await _page(staff, 400, error=exc.message)
    await staff.audit("role changed", subject=user.email, detail=user.role)
    return await _page(staff, done=f"{user.email} is now {user.role}.")


@staff_view("own")
async def remove(staff: Staff) -> Response:
    """POST /admin/users/remove, after a confirmation."""
    email = staff.form.get("email", "")
    if not confirmed(staff):
        return confirm_page(
            staff,
            f"Remove the account {email}?",
            f"{email} is signed out at once and can no longer sign in. Their actions stay in the audit log.",
            "Remove the account",
            "/admin/users",
        )
    try:
        user = await accounts.remove_user(staff.store, email)
    except (Invalid, NotFound) as exc:
        return await _page(staff, 400, error=exc.message)
    await staff.audit("user removed", subject=user.email)
    return await _page(staff, done=f"Removed {user.email}.")
