"""JSON for other sites: the live count, readable cross-origin and cacheable for seconds."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import TokenError
from ..services import Services

COUNT_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Cache-Control": "public, max-age=5",
    "Vary": "Origin",
}


async def count(request: Request) -> Response:
    """GET /api/pledges/{slug}/count → {"total": N}, plus "partner": M for a valid token."""
    services: Services = request.app.state.services
    pledge = await services.catalog.pledge(request.path_params["slug"])
    partner_id = None
    token = request.query_params.get("token")
    if token:
        claim = services.tokens.read_partner_token(token)
        partner = services.tokens.check_partner(claim, await services.catalog.partner(claim.partner_id))
        if partner.pledge_id != pledge.id:
            raise TokenError("This widget's code belongs to a different pledge.")
        partner_id = partner.id
    counts = await services.catalog.counts(pledge.id, partner_id)
    body = {"total": counts.total}
    etag = f'"{counts.total}'
    if counts.partner is not None:
        body["partner"] = counts.partner
        etag += f"-{counts.partner}"
    etag += '"'
    headers = {**COUNT_HEADERS, "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return JSONResponse(body, headers=headers)


async def healthz(request: Request) -> Response:
    """GET /healthz: the process answers and the database can be read."""
    services: Services = request.app.state.services
    await services.catalog.ping()
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})
