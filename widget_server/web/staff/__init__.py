"""The staff area at /admin: server-rendered pages for campaign staff, one module per kind of
page, and the partner's own report at /partner-report/{token}. `routes` is mounted by
web/app.py's route table, after the widget's routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from widget_server.web.staff import (
    abuse,
    assets,
    audit_log,
    auth,
    dashboard,
    exports,
    organisations,
    outbox,
    partners,
    people,
    pledges,
    users,
)
from widget_server.web.staff.common import Staff, staff_view

Endpoint = Callable[[Request], Awaitable[Response]]


def _get(path: str, view: Endpoint) -> Route:
    return Route(path, view, methods=["GET"])


def _post(path: str, view: Endpoint) -> Route:
    return Route(path, view, methods=["POST"])


@staff_view("read")
async def not_found(staff: Staff) -> Response:
    """Any other /admin address: signed-in staff get a 404, everyone else the sign-in page."""
    from widget_server.errors import NotFound
    from widget_server.messages import NO_SUCH_ADDRESS

    raise NotFound(NO_SUCH_ADDRESS)


_P = "/admin/pledges/{slug}"
_PARTNER = _P + "/partners/{partner_id}"

routes = [
    _get("/admin/static/{name}", assets.staff_asset),
    _get("/admin/login", auth.login_page),
    _post("/admin/login", auth.login),
    _post("/admin/logout", auth.logout),
    _get("/admin", dashboard.home),
    _get("/admin/account", auth.account_page),
    _post("/admin/account/password", auth.change_password),
    _post("/admin/account/sessions", auth.end_sessions),
    _get("/admin/pledges/new", pledges.new_pledge_page),
    _post("/admin/pledges", pledges.create_pledge),
    _get(_P, dashboard.dashboard_page),
    _get(_P + "/edit", pledges.edit_pledge_page),
    _post(_P + "/edit", pledges.save_pledge),
    _get(_P + "/partners", partners.partners_page),
    _post(_P + "/partners", partners.create_partner),
    _get(_PARTNER, partners.partner_page),
    _post(_PARTNER + "/origins", partners.edit_origins),
    _post(_PARTNER + "/rotate", partners.rotate),
    _post(_PARTNER + "/revoke", partners.revoke),
    _post(_PARTNER + "/reinstate", partners.reinstate),
    _post(_PARTNER + "/webhook", partners.webhook),
    _get(_P + "/organisations", organisations.organisations_page),
    _post(_P + "/organisations", organisations.review),
    _get(_P + "/abuse", abuse.abuse_page),
    _post(_P + "/abuse/invalidate", abuse.invalidate),
    _get(_P + "/export", exports.export_page),
    _get(_P + "/export.csv", exports.export_csv),
    _get("/admin/people", people.people_page),
    _post("/admin/people/find", people.find),
    _post("/admin/people/export", people.export),
    _post("/admin/people/erase", people.erase),
    _get("/admin/outbox", outbox.outbox_page),
    _post("/admin/outbox/retry", outbox.retry),
    _post("/admin/outbox/discard", outbox.discard),
    _get("/admin/audit", audit_log.audit_page),
    _get("/admin/users", users.users_page),
    _post("/admin/users", users.add),
    _post("/admin/users/role", users.change_role),
    _post("/admin/users/remove", users.remove),
    Route("/admin/{rest:path}", not_found, methods=["GET", "POST"]),
    _get("/partner-report/{token}", dashboard.partner_report_page),
]
