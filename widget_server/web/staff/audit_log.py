"""The audit log page: every staff action, newest first, filtered by who, what and pledge."""

from __future__ import annotations

from starlette.responses import Response

from widget_server.services import audit
from widget_server.web.staff.common import Staff, number, staff_view

PAGE = 100


@staff_view("own")
async def audit_page(staff: Staff) -> Response:
    """GET /admin/audit?actor=&action=&pledge=&before=."""
    query = staff.request.query_params
    filters = {key: query.get(key, "").strip() for key in ("actor", "action", "pledge")}
    before = number(query.get("before", ""), "The page")
    found = await audit.entries(staff.store, filters, before, PAGE + 1)
    more = len(found) > PAGE
    return staff.render(
        "audit.html",
        {
            "entries": found[:PAGE],
            "filters": filters,
            "actions": audit.ACTIONS,
            "older": found[PAGE - 1].id if more else None,
            "pledges": [p.slug for p in await staff.store.pledges()],
        },
    )
