"""The live count: as JSON for other sites (readable cross-origin, cacheable for seconds), and as
the counter-only badge page with a progress bar toward a goal."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from widget_server.memo import BoundedMemo
from widget_server.web.edge.headers import SecuredAsIs, secured
from widget_server.web.fast.queries import query_params
from widget_server.web.fast.responses import Prebuilt, raw
from widget_server.web.runtime import Services
from widget_server.web.widget.embedding import embedding_for, token_partner
from widget_server.web.widget.render import cached_page, context, count_fields, fill, frame_html

COUNT_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Cache-Control": "public, max-age=5",
    "Vary": "Origin",
}

# Every answer the counter can give for one (total, partner count) is built once: the counter is
# the most-requested address of all (each partner page view asks), and a count changes far less
# often than it is read. (etag, body, headers of the 200, headers of the 304.) Its bodies are a
# few dozen bytes, never worth compressing: SecuredAsIs says so to the edge.
_Answer = tuple[str, bytes, SecuredAsIs, SecuredAsIs]
_answers: BoundedMemo[tuple[int, int | None], _Answer] = BoundedMemo(4096, 8 * 1024 * 1024)


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
    not_modified = SecuredAsIs(secured(headers))
    ok = SecuredAsIs(
        secured([*headers, (b"content-length", b"%d" % len(content)), (b"content-type", b"application/json")])
    )
    return _answers.put((total, partner), (etag, content, ok, not_modified))


def _if_none_match(scope: Scope) -> str:
    name: bytes
    value: bytes
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
    token = query_params(scope).get("token") if scope["query_string"] else None
    if token:
        _, partner = await token_partner(services, pledge, token)
        partner_id = partner.id
    counts = await services.catalog.counts(pledge.id, partner_id)
    etag, content, ok, not_modified = _answer(counts.total, counts.partner)
    # Copies: a response's header list is its own to change.
    if etag in _if_none_match(scope):
        return Prebuilt(b"", SecuredAsIs(not_modified), status_code=304)
    return Prebuilt(content, SecuredAsIs(ok))


async def counter_page(request: Request) -> Response:
    """GET /embed/{slug}/counter: the counter-only badge, with a progress bar toward a goal."""
    services: Services = request.app.state.services
    embedding = await embedding_for(request)
    total = (await services.catalog.counts(embedding.pledge.id)).total
    goal_param = query_params(request.scope).get("goal", "")
    goal = embedding.pledge.goal
    if goal_param.isascii() and goal_param.isdigit() and 0 < int(goal_param) < 10**9:
        goal = int(goal_param)

    def badge() -> dict[str, object]:
        return context(services, embedding, total, goal=goal)

    page = cached_page(request, "counter.html", embedding, total, badge, goal)
    return frame_html(fill(request, page, count_fields(total, goal)), embedding)
