"""The abuse panel: signing bursts per hour by client mark, email domain and partner, and
invalidating one after a preview of how many signatures it matches."""

from __future__ import annotations

from starlette.responses import Response

from widget_server.services import abuse
from widget_server.web.staff.common import Staff, confirm_page, confirmed, number, staff_view


@staff_view("campaign")
async def abuse_page(staff: Staff) -> Response:
    """GET /admin/pledges/{slug}/abuse?hours=24&threshold=10."""
    pledge = await staff.pledge()
    query = staff.request.query_params
    hours = number(query.get("hours", ""), "The window") or abuse.WINDOW_HOURS[0]
    threshold = number(query.get("threshold", ""), "The threshold") or abuse.DEFAULT_THRESHOLD
    found = await abuse.panel(staff.store, pledge, staff.now, hours, threshold)
    return staff.render("abuse.html", {"pledge": pledge, "panel": found, "windows": abuse.WINDOW_HOURS})


@staff_view("campaign")
async def invalidate(staff: Staff) -> Response:
    """POST /admin/pledges/{slug}/abuse/invalidate: preview, then remove, then audit."""
    pledge = await staff.pledge()
    form = staff.form
    match = abuse.checked_match(pledge, form.get("hour", ""), form.get("kind", ""), form.get("value", ""))
    names = {str(p.id): p.name for p in await staff.store.partners_of(pledge.id)} | {"0": "Signed directly"}
    what = abuse.describe(match, names)
    if not confirmed(staff):
        matching = await abuse.preview(staff.store, match)
        return confirm_page(
            staff,
            f"Remove {matching:,} signature{'s' if matching != 1 else ''}?",
            f"This removes every signature of this pledge from {what}: {matching:,} now. The totals, the"
            " per-partner counts and the charts go down by as many. It cannot be undone, and it is recorded"
            " in the audit log.",
            "Remove these signatures",
            f"/admin/pledges/{pledge.slug}/abuse",
        )
    removed = await abuse.invalidate(staff.store, match)
    await staff.audit("burst invalidated", pledge=pledge.slug, subject=what, detail=f"{removed} signatures removed")
    found = await abuse.panel(staff.store, pledge, staff.now, abuse.WINDOW_HOURS[0], abuse.DEFAULT_THRESHOLD)
    return staff.render(
        "abuse.html",
        {
            "pledge": pledge,
            "panel": found,
            "windows": abuse.WINDOW_HOURS,
            "done": f"Removed {removed:,} signature{'s' if removed != 1 else ''} from {what}; counts corrected.",
        },
    )
