"""GET /healthz: for load balancers and monitors, the process answers and the database can be read."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from widget_server.errors import Unavailable
from widget_server.web.runtime import Services


async def healthz(request: Request) -> Response:
    """{"status": "ok"}, never cached; 503 and the error in the API's JSON shape when the database
    cannot be reached (monitors read JSON, whatever they ask for)."""
    services: Services = request.app.state.services
    try:
        await services.catalog.ping()
    except Unavailable as exc:
        body = {"status": "unavailable", "error": {"status": 503, "message": exc.message}}
        return JSONResponse(body, status_code=503, headers={"Cache-Control": "no-store"})
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})
