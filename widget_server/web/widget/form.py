"""GET /embed/{slug} (and /pledge/{slug}): the pledge and its sign form, with a signed form token."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from widget_server.core.models import ATTRIBUTION_PARAMS
from widget_server.core.signform import SignForm, clean_attribution
from widget_server.security.tokens import FormClaim
from widget_server.services.signing import TICKS_PER_SECOND, tick_after
from widget_server.web.fast.pagecache import slot
from widget_server.web.fast.queries import query_params
from widget_server.web.runtime import Services
from widget_server.web.widget.embedding import embedding_for
from widget_server.web.widget.render import cached_page, context, count_fields, fill, frame_html


async def embed_page(request: Request) -> Response:
    """The form, attributed to the token's partner; its form token says who, where and when."""
    services: Services = request.app.state.services
    embedding = await embedding_for(request)
    pledge = embedding.pledge
    partner_id = embedding.partner.id if embedding.partner else None
    # The form lives no longer than the partner token version it was rendered under.
    version = embedding.partner.token_version if embedding.partner else 0
    # Forms opened in the same tick share one form token (`Tokens.page_form_token`); the stamp
    # is rounded up (`tick_after`), so the minimum fill time is never shortened.
    tick = tick_after(services.clock())
    scope = request.scope

    def claim() -> FormClaim:
        return FormClaim(
            pledge_id=pledge.id,
            partner_id=partner_id,
            origin=embedding.parent_origin,
            rendered_at=tick / TICKS_PER_SECOND,
            attribution=clean_attribution(query_params(scope), ATTRIBUTION_PARAMS),
            version=version,
        )

    # The query decides the attribution; the embedding the rest of the claim.
    key = (pledge.id, partner_id, version, embedding.parent_origin, scope["query_string"])
    token = services.tokens.page_form_token(key, tick, claim)
    total = (await services.catalog.counts(pledge.id)).total

    # Everyone who opens this form sees the same page but for its form token and the count.
    def blank_form() -> dict[str, object]:
        return context(services, embedding, total, form=SignForm(form_token=slot("form_token")), message="")

    page = cached_page(request, "embed.html", embedding, total, blank_form)
    return frame_html(fill(request, page, {"form_token": token, **count_fields(total, pledge.goal)}), embedding)
