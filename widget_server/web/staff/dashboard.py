"""The pages staff keep open: the list of pledges, and a pledge's dashboard; and the partner's
own read-only report, opened from its signed link."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from widget_server.errors import WidgetError
from widget_server.services import dashboard as numbers
from widget_server.services.partner_links import partner_of_link
from widget_server.web.staff import charts
from widget_server.web.staff.common import Staff, error_page, render, services_of, staff_view, store_of


@staff_view("read")
async def home(staff: Staff) -> Response:
    """GET /admin: every pledge with its total, newest first."""
    return staff.render("home.html", {"pledges": await staff.store.pledges()})


@staff_view("read")
async def dashboard_page(staff: Staff) -> Response:
    """GET /admin/pledges/{slug}: totals, the per-partner table, the charts, occupations, sources."""
    pledge = await staff.pledge()
    query = staff.request.query_params
    sort = query.get("sort", "signatures")
    descending = query.get("order", "desc") != "asc"
    board = await numbers.dashboard(
        staff.store, pledge, staff.now, sort=sort, descending=descending, focus=query.get("partner", "")
    )
    return staff.render(
        "dashboard.html",
        {
            "board": board,
            "pledge": pledge,
            "charts": charts,
            "day_chart": charts.stacked_bars(board.days, f"Signatures per day for {pledge.title}", "days"),
            "hour_chart": charts.stacked_bars(board.hours, "Signatures per hour, the last 48 hours", "hours"),
            "sort_keys": numbers.SORT_KEYS,
        },
    )


async def partner_report_page(request: Request) -> Response:
    """GET /partner-report/{token}: one partner's own numbers, chart and sources; nothing else."""
    try:
        pledge, partner = await partner_of_link(
            store_of(request), services_of(request).settings, request.path_params["token"]
        )
        report = await numbers.partner_report(store_of(request), pledge, partner, services_of(request).clock())
    except WidgetError as exc:
        response = error_page(request, exc)
    else:
        response = render(
            request,
            "partner_report.html",
            {
                "report": report,
                "charts": charts,
                "day_chart": charts.stacked_bars(report.days, f"{partner.name}: signatures per day", "days"),
                "hour_chart": charts.stacked_bars(report.hours, f"{partner.name}: the last 48 hours", "hours"),
            },
        )
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response
