"""The pages inside the partner's iframe: the sign form, its submission, and the counter badge."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from ..errors import BadRequest, Forbidden, TokenError, TooManyRequests, UnsupportedMediaType, WidgetError
from ..headers import csp
from ..models import ATTRIBUTION_PARAMS, NewSignature, Partner, Pledge
from ..pagecache import SLOT
from ..services import Services
from ..signing import SignForm, clean_attribution
from ..tokens import FORM_EXPIRED, REVOKED, FormClaim
from .errors import error_response, wants_json

TOO_QUICK = "Thank you! Just checking a person is signing: please press Sign again."
CROSS_SITE = "Signatures can only be sent from the pledge's own form."
WRONG_SITE = "This form can only be shown on the websites the campaign approved for this organisation."
SLOW_DOWN = "Many signatures are arriving from your connection. Please try again in a minute."
PARTNER_BUSY = "This form is receiving an unusual number of signatures. Please try again shortly."
NOT_A_FORM = "Please send the pledge form as a normal web form."
OTHER_PLEDGE = "This form belongs to a different pledge. Please reload the page."


@dataclass(frozen=True)
class Embedding:
    """Where a page is shown: the pledge, the partner (None: direct), who may frame it."""

    pledge: Pledge
    partner: Partner | None
    partner_token: str
    frame_ancestors: tuple[str, ...]
    parent_origin: str = ""


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


async def _embedding(request: Request, services: Services) -> Embedding:
    """Read the pledge and the partner token of an embed request, and check who frames it."""
    pledge = await services.catalog.pledge(request.path_params["slug"])
    token = request.query_params.get("token", "")
    if not token:
        allowed = services.settings.direct_frame_origins
        return Embedding(pledge, None, "", allowed, _embedding_origin(request, allowed))
    claim = services.tokens.read_partner_token(token)
    partner = services.tokens.check_partner(claim, await services.catalog.partner(claim.partner_id))
    if partner.pledge_id != pledge.id:
        raise TokenError("This widget's code belongs to a different pledge.", claim.origins)
    return Embedding(pledge, partner, token, claim.origins, _embedding_origin(request, claim.origins))


def _embedding_origin(request: Request, allowed: tuple[str, ...]) -> str:
    """The page that frames us, if we can tell; Forbidden when it is not an allowed one.

    The loader passes `parent`; the browser's Referer says the same for iframes. A top-level
    visit (a shared link) has no embedding page, whatever its Referer.
    """
    candidates = [request.query_params.get("parent", "")]
    if request.headers.get("sec-fetch-dest", "iframe") == "iframe":
        candidates.append(_origin_of(request.headers.get("referer", "")))
    found = ""
    for origin in filter(None, candidates):
        if origin not in allowed:
            raise Forbidden(WRONG_SITE)
        found = found or origin
    return found


def _context(services: Services, embedding: Embedding, total: int, **context: object) -> dict[str, object]:
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
        total=total,
        share_url=share_url,
        privacy_url=pledge.privacy_url or f"/pledge/{pledge.slug}/privacy",
    )
    return context


def _render(request: Request, template: str, context: dict[str, object]) -> str:
    return str(request.app.state.templates.get_template(template).render(context))


def _html(body: bytes | str, embedding: Embedding, status_code: int = 200) -> Response:
    headers = {"Content-Security-Policy": csp(embedding.frame_ancestors), "Cache-Control": "no-store"}
    return HTMLResponse(body, status_code=status_code, headers=headers)


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


async def embed_page(request: Request) -> Response:
    """GET /embed/{slug}: the pledge and its sign form, attributed to the token's partner."""
    services: Services = request.app.state.services
    embedding = await _embedding(request, services)
    claim = FormClaim(
        pledge_id=embedding.pledge.id,
        partner_id=embedding.partner.id if embedding.partner else None,
        origin=embedding.parent_origin,
        rendered_at=services.clock(),
        attribution=clean_attribution(request.query_params, ATTRIBUTION_PARAMS),
    )
    total = (await services.catalog.counts(embedding.pledge.id)).total
    token = services.tokens.form_token(claim)

    def render() -> str:
        blank = SignForm(form_token=SLOT)
        return _render(request, "embed.html", _context(services, embedding, total, form=blank, message=""))

    # Everyone who opens this form sees the same page but for its form token.
    before, after = request.app.state.page_cache.get(("form", embedding, total), render)
    return _html(b"".join((before, token.encode(), after)), embedding)


def _refuse_cross_site(request: Request, public_url: str) -> None:
    """Only our own form may sign: no other page can make its visitors' browsers post here."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site not in ("same-origin", "none"):
            raise Forbidden(CROSS_SITE)
        return
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser form post (or a very old browser): the form token still rules
    if origin not in {_origin_of(str(request.base_url)), _origin_of(public_url)}:
        raise Forbidden(CROSS_SITE)


async def _read_submission(
    request: Request, services: Services, pledge: Pledge
) -> tuple[SignForm, FormClaim, Embedding]:
    """The posted form and what its form token says: the only source of attribution."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        raise UnsupportedMediaType(NOT_A_FORM)
    async with request.form(max_files=0, max_fields=20) as data:
        form = SignForm.from_post({k: v for k, v in data.items() if isinstance(v, str)})
    claim = services.tokens.read_form_token(form.form_token)
    if claim.pledge_id != pledge.id:
        raise BadRequest(OTHER_PLEDGE)
    partner = None
    if claim.partner_id is not None:
        partner = await services.catalog.partner(claim.partner_id)
        if partner is None:
            raise Forbidden(REVOKED)
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
    client = request.client.host if request.client else "unknown"
    # Every post counts against its client, whatever it holds.
    wait = services.client_limiter.hit(services.client_keys.key(client))
    try:
        form, claim, embedding = await _read_submission(request, services, pledge)
    except WidgetError:
        if wait:
            raise TooManyRequests(SLOW_DOWN, wait) from None
        raise
    # From here on a refusal is shown inside the partner's frame: with JavaScript off, one that
    # may not be framed there would leave the supporter looking at a blank, blocked frame.
    if wait:
        return error_response(request, TooManyRequests(SLOW_DOWN, wait), embedding.frame_ancestors)
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
    fresh = FormClaim(claim.pledge_id, claim.partner_id, claim.origin, now, claim.attribution)

    async def again(message: str, status_code: int = 200) -> Response:
        total = (await services.catalog.counts(pledge.id)).total
        return _form_response(request, services, embedding, form, fresh, total, message, status_code)

    if form.is_bot:
        # Answer a bot exactly as a person, so it learns nothing; store nothing.
        return await _thank(request, services, embedding, form, None)
    age = now - claim.rendered_at
    if age > settings.form_token_hours * 3600:
        return await again(FORM_EXPIRED)
    if age < settings.min_fill_seconds:
        return await again(TOO_QUICK)
    if not form.validate():
        return await again("", status_code=400)
    wait = services.partner_limiter.hit(f"partner:{claim.partner_id or 'direct'}")
    if wait:
        raise TooManyRequests(PARTNER_BUSY, wait)

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
        return JSONResponse({"status": "signed", "total": total}, headers={"Cache-Control": "no-store"})
    return _respond(request, services, "thanks.html", embedding, total, name=form.name)


async def counter_page(request: Request) -> Response:
    """GET /embed/{slug}/counter: the counter-only badge, with a progress bar toward a goal."""
    services: Services = request.app.state.services
    embedding = await _embedding(request, services)
    total = (await services.catalog.counts(embedding.pledge.id)).total
    goal_param = request.query_params.get("goal", "")
    goal = embedding.pledge.goal
    if goal_param.isdigit() and 0 < int(goal_param) < 10**9:
        goal = int(goal_param)

    def render() -> str:
        return _render(request, "counter.html", _context(services, embedding, total, goal=goal))

    (page,) = request.app.state.page_cache.get(("counter", embedding, total, goal), render)
    return _html(page, embedding)


async def privacy_page(request: Request) -> Response:
    """GET /pledge/{slug}/privacy: the plain-words notice the form links to."""
    services: Services = request.app.state.services
    pledge = await services.catalog.pledge(request.path_params["slug"])
    total = (await services.catalog.counts(pledge.id)).total
    return _respond(request, services, "privacy.html", Embedding(pledge, None, "", ()), total)
