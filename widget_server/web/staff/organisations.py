"""The moderation queue for the public list of organisations that have signed."""

from __future__ import annotations

from starlette.responses import Response

from widget_server.errors import Invalid, NotFound
from widget_server.services import organisations
from widget_server.web.staff.common import Staff, staff_view

_ACTIONS = {"approve": ("approved", "organisation approved"), "hide": ("hidden", "organisation hidden")}


async def _page(staff: Staff, **extra: object) -> Response:
    pledge = await staff.pledge()
    status = staff.request.query_params.get("status", "pending")
    status = status if status in organisations.ORGANISATION_STATUSES else "pending"
    found = await staff.store.organisations(pledge.id)
    counts = {s: sum(1 for o in found if o["status"] == s) for s in organisations.ORGANISATION_STATUSES}
    shown = [o for o in found if o["status"] == status]
    context = {"pledge": pledge, "status": status, "organisations": shown, "counts": counts, **extra}
    return staff.render("organisations.html", context, 400 if "error" in extra else 200)


@staff_view("campaign")
async def organisations_page(staff: Staff) -> Response:
    """GET /admin/pledges/{slug}/organisations?status=pending|approved|hidden."""
    return await _page(staff)


@staff_view("campaign")
async def review(staff: Staff) -> Response:
    """POST /admin/pledges/{slug}/organisations: approve or hide one organisation."""
    pledge = await staff.pledge()
    name, action = staff.form.get("name", ""), staff.form.get("action", "")
    if action not in _ACTIONS:
        return await _page(staff, error="Choose approve or hide.")
    status, audited = _ACTIONS[action]
    try:
        await organisations.review_organisation(staff.store, pledge.slug, name, status)
    except (NotFound, Invalid) as exc:
        return await _page(staff, error=exc.message)
    await staff.audit(audited, pledge=pledge.slug, subject=name)
    where = "is shown in the public list" if status == "approved" else "is kept out of the public list"
    return await _page(staff, done=f"{name} {where}.")
