"""CSV downloads: all of a pledge's signatures, one partner's, or only those who agreed to hear
from that partner. Streamed, formula-safe, audited."""

from __future__ import annotations

from starlette.responses import Response, StreamingResponse

from widget_server.core.models import Partner
from widget_server.errors import NotFound
from widget_server.services import exports
from widget_server.services.dashboard import DIRECT_KEY
from widget_server.web.staff.common import Staff, staff_view


@staff_view("campaign")
async def export_page(staff: Staff) -> Response:
    """GET /admin/pledges/{slug}/export: what can be downloaded."""
    pledge = await staff.pledge()
    return staff.render("export.html", {"pledge": pledge, "partners": await staff.store.partners_of(pledge.id)})


@staff_view("campaign")
async def export_csv(staff: Staff) -> Response:
    """GET /admin/pledges/{slug}/export.csv?partner=ID|direct&opted_in=1."""
    pledge = await staff.pledge()
    query = staff.request.query_params
    which = query.get("partner", "")
    direct = which == DIRECT_KEY
    partner: Partner | None = None
    if which and not direct:
        partner = await staff.store.partner_by_id(int(which)) if which.isdigit() else None
        if partner is None or partner.pledge_id != pledge.id:
            raise NotFound(f"Pledge {pledge.slug!r} has no such partner.")
    opted_in = query.get("opted_in") == "1" and partner is not None
    await staff.audit(
        "export downloaded", pledge=pledge.slug, detail=exports.describe(partner, direct, opted_in) + " (CSV)"
    )
    name = exports.filename(pledge, partner, direct, opted_in)
    return StreamingResponse(
        exports.csv_lines(staff.store, pledge, partner, direct, opted_in),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Content-Type-Options": "nosniff"},
    )
