"""The request's side of attribution: read the partner token, `parent`, Referer and Sec-Fetch-Dest
of a widget request and let `core.attribution` decide who gets credit and who may frame it."""

from __future__ import annotations

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.types import Scope

from widget_server.core.attribution import Embedding, credited_partner, embedding_origin
from widget_server.core.models import Partner, Pledge
from widget_server.web.fast.queries import query_params
from widget_server.web.runtime import Services


async def token_partner(services: Services, pledge: Pledge, token: str) -> tuple[tuple[str, ...], Partner]:
    """The origins a partner token names and the partner it credits on `pledge`; TokenError if none."""
    claim = services.tokens.read_partner_token(token)
    return claim.origins, credited_partner(pledge, claim, await services.catalog.partner(claim.partner_id))


async def embedding_for(request: Request) -> Embedding:
    """Where a widget page (the form, the badge) is shown: its pledge, partner and framing page."""
    scope = request.scope
    services: Services = request.app.state.services
    pledge = await services.catalog.pledge(scope["path_params"]["slug"])
    query = query_params(scope)
    token = query.get("token", "")
    if not token:
        allowed = services.settings.direct_frame_origins
        return Embedding(pledge, None, "", allowed, _framing_origin(scope, query, allowed))
    allowed, partner = await token_partner(services, pledge, token)
    return Embedding(pledge, partner, token, allowed, _framing_origin(scope, query, allowed))


def _framing_origin(scope: Scope, query: QueryParams, allowed: tuple[str, ...]) -> str:
    # The two headers are read straight from the scope rather than through a Headers object;
    # the first of each counts, as with request.headers.
    dest: bytes | None = None
    referer: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"sec-fetch-dest" and dest is None:
            dest = value
        elif name == b"referer" and referer is None:
            referer = value
    return embedding_origin(
        query.get("parent", ""),
        referer.decode("latin-1") if referer else "",
        None if dest is None else dest.decode("latin-1"),
        allowed,
    )
