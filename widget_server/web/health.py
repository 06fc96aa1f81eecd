"""GET /healthz: for load balancers and monitors, the process answers and the database can be read."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from widget_server.web.runtime import Services


async def healthz(request: Request) -> Response:
    """{"status": "ok"}, never cached; an error answer when the database cannot be read."""
    services: Services = request.app.state.services
    await services.catalog.ping()
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})
