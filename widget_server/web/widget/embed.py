"""The pages inside the partner's iframe: the sign form, its submission, and the counter badge."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from markupsafe import Markup, escape
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from widget_server.core.models import ATTRIBUTION_PARAMS, NewSignature, Partner, Pledge
from widget_server.core.signform import SignForm, clean_attribution
from widget_server.errors import Invalid, NotAllowed, RateLimited, TokenError, WidgetError
from widget_server.messages import (
    CROSS_SITE,
    FORM_EXPIRED,
    NOT_A_FORM,
    OTHER_PLEDGE,
    PARTNER_BUSY,
    REVOKED,
    SLOW_DOWN,
    TOO_MANY_FIELDS,
    TOO_QUICK,
    WRONG_PLEDGE,
    WRONG_SITE,
)
from widget_server.security.tokens import FormClaim
from widget_server.web.edge.headers import csp, secured
from widget_server.web.errors import UnsupportedMediaType, error_response, wants_json
from widget_server.web.fast.pagecache import Page, slot
from widget_server.web.fast.responses import RawHeaders, html, json_bytes
from widget_server.web.runtime import Services

MAX_FIELDS = 20


@dataclass(frozen=True)
class Embedding:
    """Where a page is shown: the pledge, the partner (None: direct), who may frame it."""

    pledge: Pledge
    partner: Partner | None
    partner_token: str
    frame_ancestors: tuple[str, ...]
    parent_origin: str = ""


_parsed_queries: dict[bytes, QueryParams] = {}
_MAX_QUERIES = 4096


def _query(request: Request) -> QueryParams:
    """The request's query parameters, parsed once per distinct query string.

    Every view of one partner's form sends the same long query (its token, the parent page),
    and parsing it was a sixth of a page view. QueryParams is immutable, so sharing is safe.
    """
    raw = request.scope["query_string"]
    params = _parsed_queries.get(raw)
    if params is None:
        if len(_parsed_queries) >= _MAX_QUERIES:
            _parsed_queries.clear()
        params = _parsed_queries[raw] = QueryParams(raw)
    return params


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


async def _embedding(request: Request, services: Services) -> Embedding:
    """Read the pledge and the partner token of an embed request, and check who frames it."""
    pledge = await services.catalog.pledge(request.path_params["slug"])
    token = _query(request).get("token", "")
    if not token:
        allowed = services.settings.direct_frame_origins
        return Embedding(pledge, None, "", allowed, _embedding_origin(request, allowed))
    claim = services.tokens.read_partner_token(token)
    partner = services.tokens.check_partner(claim, await services.catalog.partner(claim.partner_id))
    if partner.pledge_id != pledge.id:
        raise TokenError(WRONG_PLEDGE, claim.origins)
    return Embedding(pledge, partner, token, claim.origins, _embedding_origin(request, claim.origins))


def _embedding_origin(request: Request, allowed: tuple[str, ...]) -> str:
    """The page that frames us, if we can tell; NotAllowed when it is not an allowed one.

    The loader passes `parent`; the browser's Referer says the same for iframes. A top-level
    visit (a shared link) has no embedding page, whatever its Referer.
    """
    candidates = [_query(request).get("parent", "")]
    # The two headers read straight from the scope: a Headers object costs more than the scan.
    # The first of each counts, as with request.headers.
    dest: bytes | None = None
    referer: bytes | None = None
    for name, value in request.scope["headers"]:
        if name == b"sec-fetch-dest" and dest is None:
            dest = value
        elif name == b"referer" and referer is None:
            referer = value
    if dest is None or dest == b"iframe":
        candidates.append(_origin_of((referer or b"").decode("latin-1")))
    found = ""
    for origin in filter(None, candidates):
        if origin not in allowed:
            raise NotAllowed(WRONG_SITE)
        found = found or origin
    return found


def _context(services: Services, embedding: Embedding, total: int, **context: object) -> dict[str, object]:
    """What the templates show; the count's three forms come from `_count`."""
    pledge = embedding.pledge
    share_url = f"{services.settings.public_url}/pledge/{pledge.slug}"
    if embedding.partner_token:
        share_url += "?" + urlencode({"token": embedding.partner_token})
    context.update(
        pledge=pledge,
        # Staff rich text, sanitised by richtext.sanitise when it was saved.
        statement=Markup(pledge.statement_html),
        partner=embedding.partner,
        parent_origin=embedding.parent_origin,
        one_signer=total == 1,
        share_url=share_url,
        privacy_url=pledge.privacy_url or f"/pledge/{pledge.slug}/privacy",
    )
    context.update(_count(total, context.get("goal", pledge.goal)))
    return context


def _count(total: int, goal: object) -> dict[str, str]:
    """The count as the templates print it: raw, with thousands separators, and toward the goal."""
    progress = min(total, goal) if isinstance(goal, int) and goal else 0
    return {"total": str(total), "total_text": f"{total:,}", "progress": str(progress)}


_COUNT_SLOTS = {name: slot(name) for name in ("total", "total_text", "progress")}


def _cached_page(
    request: Request, key: tuple[object, ...], template: str, context: Callable[[], dict[str, object]]
) -> Page:
    """A page rendered once per `key` with the count left as slots, so a new count is no new render.

    `key` must hold everything else the page shows, including whether the count is one: "1 person
    has" and "2 people have" differ in more than the number.
    """

    def render() -> str:
        return _render(request, template, {**context(), **_COUNT_SLOTS})

    return request.app.state.page_cache.get(key, render)  # type: ignore[no-any-return]


def _render(request: Request, template: str, context: dict[str, object]) -> str:
    return str(request.app.state.templates.get_template(template).render(context))


_NO_STORE = secured([(b"cache-control", b"no-store")])


@functools.lru_cache(maxsize=1024)
def _page_headers(frame_ancestors: tuple[str, ...]) -> RawHeaders:
    """A frame page's headers but its length: built once per set of framing origins."""
    return secured([(b"content-security-policy", csp(frame_ancestors).encode()), (b"cache-control", b"no-store")])


def _html(body: bytes | str, embedding: Embedding, status_code: int = 200) -> Response:
    if isinstance(body, str):
        body = body.encode()
    return html(body, _page_headers(tuple(embedding.frame_ancestors)), status_code)


def _respond(
    request: Request,
    services: Services,
    template: str,
    embedding: Embedding,
    total: int,
    status_code: int = 200,
    **context: object,
) -> Response:
    page = _render(request, template, _context(services, embedding, total, **context))
    return _html(page, embedding, status_code)


def _form_response(
    request: Request,
    services: Services,
    embedding: Embedding,
    form: SignForm,
    claim: FormClaim,
    total: int,
    message: str = "",
    status_code: int = 200,
) -> Response:
    """The sign form, with the person's input kept and a fresh form token."""
    form.form_token = services.tokens.form_token(claim)
    if wants_json(request):
        body = {"status": "invalid", "errors": form.errors, "message": message, "form_token": form.form_token}
        return JSONResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})
    return _respond(
        request, services, "embed.html", embedding, total, status_code, form=form, message=message
    )


TICKS_PER_SECOND = 10


def _tick_after(now: float) -> int:
    """The first tick (tenth of a second) at or after `now`, exactly, float rounding included."""
    tick = math.ceil(now * TICKS_PER_SECOND)
    while tick / TICKS_PER_SECOND < now:
        tick += 1
    return tick


async def embed_page(request: Request) -> Response:
    """GET /embed/{slug}: the pledge and its sign form, attributed to the token's partner."""
    services: Services = request.app.state.services
    embedding = await _embedding(request, services)
    partner_id = embedding.partner.id if embedding.partner else None
    # Rendered-at is stamped in tenths of a second, rounded UP, so pages opened in the same tenth
    # share one form token (minting is most of a page view's cost). Up, never down: the stamp is
    # never earlier than the real render, so the minimum fill time is never shortened (a form is
    # judged at most 0.1 s younger than it is, and its 6-hour expiry comes at most 0.1 s late).
    tick = _tick_after(services.clock())

    def claim() -> FormClaim:
        return FormClaim(
            pledge_id=embedding.pledge.id,
            partner_id=partner_id,
            origin=embedding.parent_origin,
            rendered_at=tick / TICKS_PER_SECOND,
            attribution=clean_attribution(_query(request), ATTRIBUTION_PARAMS),
        )

    # The query decides the attribution; the embedding the rest of the claim.
    key = (embedding.pledge.id, partner_id, embedding.parent_origin, request.scope["query_string"])
    token = services.tokens.page_form_token(key, tick, claim)
    total = (await services.catalog.counts(embedding.pledge.id)).total

    # Everyone who opens this form sees the same page but for its form token and the count.
    def context() -> dict[str, object]:
        blank = SignForm(form_token=slot("form_token"))
        return _context(services, embedding, total, form=blank, message="")

    page = _cached_page(request, ("form", embedding, total == 1), "embed.html", context)
    return _html(page.fill({"form_token": token, **_count(total, embedding.pledge.goal)}), embedding)


def _refuse_cross_site(request: Request, public_url: str) -> None:
    """Only our own form may sign: no other page can make its visitors' browsers post here."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site not in ("same-origin", "none"):
            raise NotAllowed(CROSS_SITE)
        return
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser form post (or a very old browser): the form token still rules
    if origin not in {_origin_of(str(request.base_url)), _origin_of(public_url)}:
        raise NotAllowed(CROSS_SITE)


async def _posted_fields(request: Request) -> dict[str, str]:
    """The posted form's text fields (the last of a repeated name wins, as in Starlette's form),
    at most MAX_FIELDS of them.

    URL-encoded bodies, which both the plain and the enhanced form send, are parsed with the
    standard library: the same fields as Starlette's parser gives (checked on 100,000 random and
    malformed bodies), at a fraction of its cost; the body is already capped at 16 KiB.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        fields = parse_qsl((await request.body()).decode("latin-1"), keep_blank_values=True)
        if len(fields) > MAX_FIELDS:
            raise Invalid(TOO_MANY_FIELDS)
        return dict(fields)
    if not content_type.startswith("multipart/form-data"):
        raise UnsupportedMediaType(NOT_A_FORM)
    async with request.form(max_files=0, max_fields=MAX_FIELDS) as data:
        return {k: v for k, v in data.items() if isinstance(v, str)}


async def _read_submission(
    request: Request, services: Services, pledge: Pledge
) -> tuple[SignForm, FormClaim, Embedding]:
    """The posted form and what its form token says: the only source of attribution."""
    form = SignForm.from_post(await _posted_fields(request))
    claim = services.tokens.read_form_token(form.form_token)
    if claim.pledge_id != pledge.id:
        raise Invalid(OTHER_PLEDGE)
    partner = None
    if claim.partner_id is not None:
        partner = await services.catalog.partner(claim.partner_id)
        if partner is None:
            raise NotAllowed(REVOKED)
        if partner.revoked:
            raise TokenError(REVOKED, partner.origins)
    embedding = Embedding(
        pledge,
        partner,
        services.tokens.partner_token(partner) if partner else "",
        partner.origins if partner else services.settings.direct_frame_origins,
        claim.origin,
    )
    return form, claim, embedding


async def sign(request: Request) -> Response:
    """POST /embed/{slug}/sign: validate, store (attributed by the form token only), thank."""
    services: Services = request.app.state.services
    pledge = await services.catalog.pledge(request.path_params["slug"])
    _refuse_cross_site(request, services.settings.public_url)
    wait = 0
    if services.client_limiter.rate is not None:  # the key costs an HMAC: not when the limit is off
        client = request.client.host if request.client else "unknown"
        # Every post counts against its client, whatever it holds.
        wait = services.client_limiter.hit(services.client_keys.key(client))
    try:
        form, claim, embedding = await _read_submission(request, services, pledge)
    except WidgetError:
        if wait:
            raise RateLimited(SLOW_DOWN, wait) from None
        raise
    # From here on a refusal is shown inside the partner's frame: with JavaScript off, one that
    # may not be framed there would leave the supporter looking at a blank, blocked frame.
    if wait:
        return error_response(request, RateLimited(SLOW_DOWN, wait), embedding.frame_ancestors)
    try:
        return await _sign(request, services, embedding, form, claim)
    except WidgetError as exc:
        return error_response(request, exc, embedding.frame_ancestors)


async def _sign(
    request: Request, services: Services, embedding: Embedding, form: SignForm, claim: FormClaim
) -> Response:
    """The checks a person can fail (bot, timing, fields, partner limit), then the stored signature."""
    settings = services.settings
    pledge, partner = embedding.pledge, embedding.partner
    now = services.clock()

    async def again(message: str, status_code: int = 200) -> Response:
        total = (await services.catalog.counts(pledge.id)).total
        fresh = FormClaim(claim.pledge_id, claim.partner_id, claim.origin, now, claim.attribution)
        return _form_response(request, services, embedding, form, fresh, total, message, status_code)

    if form.is_bot:
        # Answer a bot exactly as a person, so it learns nothing; store nothing.
        return await _thank(request, services, embedding, form, None)
    age = now - claim.rendered_at
    if age > settings.form_token_hours * 3600:
        return await again(FORM_EXPIRED)
    # A form is stamped up to 0.1 s after its render (embed_page), so "no minimum" must not be
    # `age < 0`: a script posting at once would be told to press Sign again.
    if settings.min_fill_seconds > 0 and age < settings.min_fill_seconds:
        return await again(TOO_QUICK)
    if not form.validate():
        return await again("", status_code=400)
    wait = services.partner_limiter.hit(f"partner:{claim.partner_id or 'direct'}")
    if wait:
        raise RateLimited(PARTNER_BUSY, wait)

    result = await services.writer.submit(
        NewSignature(
            pledge_id=pledge.id,
            partner_id=claim.partner_id,
            email=form.email,
            name=form.name,
            occupation=form.occupation,
            organisation=form.organisation,
            opt_in_updates=form.opt_in_updates,
            opt_in_partner=form.opt_in_partner and partner is not None,
            origin=claim.origin,
            attribution=claim.attribution,
            created_at=services.utc_now(),
        )
    )
    # New or already signed: the same answer, so the form never reveals who has signed.
    return await _thank(request, services, embedding, form, result.total)


async def _thank(
    request: Request, services: Services, embedding: Embedding, form: SignForm, total: int | None
) -> Response:
    if total is None:
        total = (await services.catalog.counts(embedding.pledge.id)).total
    if wants_json(request):
        # What JSONResponse would send, without building its headers on every signature.
        return json_bytes(b'{"status":"signed","total":%d}' % total, _NO_STORE)

    # The same page for everyone signing here but for their name and the count. The name is
    # escaped exactly as the template's autoescape would (both are markupsafe.escape);
    # "Thank you" alone when there is none is another page.
    def context() -> dict[str, object]:
        return _context(services, embedding, total, name=slot("name") if form.name else "")

    page = _cached_page(request, ("thanks", embedding, total == 1, bool(form.name)), "thanks.html", context)
    return _html(page.fill({"name": escape(form.name), **_count(total, embedding.pledge.goal)}), embedding)


async def counter_page(request: Request) -> Response:
    """GET /embed/{slug}/counter: the counter-only badge, with a progress bar toward a goal."""
    services: Services = request.app.state.services
    embedding = await _embedding(request, services)
    total = (await services.catalog.counts(embedding.pledge.id)).total
    goal_param = request.query_params.get("goal", "")
    goal = embedding.pledge.goal
    if goal_param.isascii() and goal_param.isdigit() and 0 < int(goal_param) < 10**9:
        goal = int(goal_param)

    def context() -> dict[str, object]:
        return _context(services, embedding, total, goal=goal)

    page = _cached_page(request, ("counter", embedding, total == 1, goal), "counter.html", context)
    return _html(page.fill(_count(total, goal)), embedding)


async def privacy_page(request: Request) -> Response:
    """GET /pledge/{slug}/privacy: the plain-words notice the form links to."""
    services: Services = request.app.state.services
    pledge = await services.catalog.pledge(request.path_params["slug"])
    total = (await services.catalog.counts(pledge.id)).total
    return _respond(request, services, "privacy.html", Embedding(pledge, None, "", ()), total)
