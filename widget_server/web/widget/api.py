"""JSON for other sites: the live count, readable cross-origin and cacheable for seconds."""

from __future__ import annotations

import json

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from widget_server import messages
from widget_server.errors import TokenError
from widget_server.web.edge.headers import Secured, secured
from widget_server.web.fast.responses import Prebuilt, raw
from widget_server.web.runtime import Services

COUNT_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Cache-Control": "public, max-age=5",
    "Vary": "Origin",
}

# Every answer the counter can give for one (total, partner count): built once, as the counter is
# the most-requested address of all (each partner page view asks), and a count changes far less
# often than it is read. (etag, body, headers of the 200, headers of the 304.)
_Answer = tuple[str, bytes, Secured, Secured]
_answers: dict[tuple[int, int | None], _Answer] = {}
_MAX_ANSWERS = 4096


def _answer(total: int, partner: int | None) -> _Answer:
    found = _answers.get((total, partner))
    if found is not None:
        return found
    body: dict[str, int] = {"total": total}
    etag = f'"{total}'
    if partner is not None:
        body["partner"] = partner
        etag += f"-{partner}"
    etag += '"'
    content = json.dumps(body, separators=(",", ":")).encode()
    headers = raw({**COUNT_HEADERS, "ETag": etag})
    not_modified = secured(headers)
    ok = secured([*headers, (b"content-length", b"%d" % len(content)), (b"content-type", b"application/json")])
    if len(_answers) >= _MAX_ANSWERS:
        _answers.clear()
    found = _answers[(total, partner)] = (etag, content, ok, not_modified)
    return found


def _if_none_match(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            return value.decode("latin-1")
    return ""


async def count(request: Request) -> Response:
    """GET /api/pledges/{slug}/count → {"total": N}, plus "partner": M for a valid token."""
    scope = request.scope
    services: Services = request.app.state.services
    pledge = await services.catalog.pledge(scope["path_params"]["slug"])
    partner_id = None
    token = QueryParams(scope["query_string"]).get("token") if scope["query_string"] else None
    if token:
        claim = services.tokens.read_partner_token(token)
        partner = services.tokens.check_partner(claim, await services.catalog.partner(claim.partner_id))
        if partner.pledge_id != pledge.id:
            raise TokenError(messages.WRONG_PLEDGE)
        partner_id = partner.id
    counts = await services.catalog.counts(pledge.id, partner_id)
    etag, content, ok, not_modified = _answer(counts.total, counts.partner)
    # Copies: a response's header list is its own to change.
    if etag in _if_none_match(scope):
        return Prebuilt(b"", Secured(not_modified), status_code=304)
    return Prebuilt(content, Secured(ok))


async def healthz(request: Request) -> Response:
    """GET /healthz: the process answers and the database can be read."""
    services: Services = request.app.state.services
    await services.catalog.ping()
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})
