"""The pledge's own pages beside the widget: the privacy notice the form links to, and the public
list of organisations that have signed (only those campaign staff approved), as HTML and JSON."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from widget_server.core.attribution import Embedding
from widget_server.web.edge.headers import csp
from widget_server.web.runtime import Services
from widget_server.web.widget.counter import COUNT_HEADERS
from widget_server.web.widget.render import respond


async def privacy_page(request: Request) -> Response:
    """GET /pledge/{slug}/privacy: the plain-words notice the form links to."""
    services: Services = request.app.state.services
    pledge = await services.catalog.pledge(request.path_params["slug"])
    total = (await services.catalog.counts(pledge.id)).total
    return respond(request, services, "privacy.html", Embedding(pledge, None, "", ()), total)


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
