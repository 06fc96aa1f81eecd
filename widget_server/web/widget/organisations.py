"""The public list of organisations that have signed: only those campaign staff approved."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from widget_server.web.edge.headers import csp
from widget_server.web.runtime import Services
from widget_server.web.widget.api import COUNT_HEADERS


async def organisations_page(request: Request) -> Response:
    """GET /pledge/{slug}/organisations: a page of its own, linked from the form."""
    services: Services = request.app.state.services
    pledge = await services.catalog.pledge(request.path_params["slug"])
    names = await services.catalog.approved_organisations(pledge.id)
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request,
        "organisations.html",
        {"pledge": pledge, "organisations": names},
        headers={"Content-Security-Policy": csp(), "Cache-Control": "public, max-age=30"},
    )


async def organisations_json(request: Request) -> Response:
    """GET /api/pledges/{slug}/organisations → {"organisations": [name, …]}, readable anywhere."""
    services: Services = request.app.state.services
    pledge = await services.catalog.pledge(request.path_params["slug"])
    names = await services.catalog.approved_organisations(pledge.id)
    return JSONResponse({"organisations": names}, headers={**COUNT_HEADERS, "Cache-Control": "public, max-age=30"})
