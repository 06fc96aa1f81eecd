"""POST /embed/{slug}/sign: parse the post, let the signing use case decide, render its outcome."""

from __future__ import annotations

from urllib.parse import unquote, unquote_to_bytes

from markupsafe import escape
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from widget_server.core.attribution import origin_of
from widget_server.errors import Invalid, NotAllowed, RateLimited, WidgetError
from widget_server.messages import CROSS_SITE, NOT_A_FORM, SLOW_DOWN, TOO_MANY_FIELDS
from widget_server.services.signing import AskAgain, Signed
from widget_server.web.errors import UnsupportedMediaType, error_response, wants_json
from widget_server.web.fast.pagecache import slot
from widget_server.web.fast.responses import json_bytes
from widget_server.web.runtime import Services
from widget_server.web.widget.render import (
    NO_STORE,
    cached_page,
    context,
    count_fields,
    fill,
    frame_html,
    respond,
)

MAX_FIELDS = 20


async def sign(request: Request) -> Response:
    """Validate, store (attributed by the form token only), thank; or ask again, or refuse."""
    services: Services = request.app.state.services
    pledge = await services.catalog.pledge(request.path_params["slug"])
    _refuse_cross_site(request, services.settings.public_url)
    wait = 0
    # The client's keyed hash: its rate-limit key, and kept as the signature's abuse mark
    # (SECURITY.md, "Abuse marks"); never the address itself.
    client = request.client
    mark = services.client_keys.key(client.host if client else "unknown")
    if services.client_limiter.rate is not None:
        # Every post counts against its client, whatever it holds.
        wait = services.client_limiter.hit(mark)
    try:
        posted = await posted_fields(request)
    except WidgetError:
        if wait:
            raise RateLimited(SLOW_DOWN, wait) from None
        raise
    outcome = await services.signing.sign(pledge, posted, client_wait=wait, client_mark=mark)
    if isinstance(outcome, Signed):
        return _thank(request, services, outcome)
    if isinstance(outcome, AskAgain):
        return _ask_again(request, services, outcome)
    return error_response(request, outcome.error, outcome.embedding.frame_ancestors)


def _refuse_cross_site(request: Request, public_url: str) -> None:
    """Only our own form may sign: no other page can make its visitors' browsers post here."""
    # The two headers are read straight from the scope, the first of each, as request.headers
    # would give them (tests/unit/test_sign_headers.py): every post asks, and through
    # request.headers each one missing is a KeyError raised and caught.
    site: bytes | None = None
    origin: bytes | None = None
    for name, value in request.scope["headers"]:
        if name == b"sec-fetch-site" and site is None:
            site = value
        elif name == b"origin" and origin is None:
            origin = value
    if site is not None:
        if site.decode("latin-1") not in ("same-origin", "none"):
            raise NotAllowed(CROSS_SITE)
        return
    if origin is None:
        return  # not a browser form post (or a very old browser): the form token still rules
    if origin.decode("latin-1") not in {origin_of(str(request.base_url)), origin_of(public_url)}:
        raise NotAllowed(CROSS_SITE)


async def posted_fields(request: Request) -> dict[str, str]:
    """The posted form's text fields (the last of a repeated name wins, as in Starlette's form),
    at most MAX_FIELDS of them.

    URL-encoded bodies, which both the plain and the enhanced form send, are parsed by
    `urlencoded_fields`; multipart ones by Starlette. The body is already capped by the edge.
    """
    content_type = ""
    for name, value in request.scope["headers"]:
        if name == b"content-type":  # the first, as request.headers would give it
            content_type = value.decode("latin-1")
            break
    if content_type.startswith("application/x-www-form-urlencoded"):
        return urlencoded_fields(await request.body())
    if not content_type.startswith("multipart/form-data"):
        raise UnsupportedMediaType(NOT_A_FORM)
    async with request.form(max_files=0, max_fields=MAX_FIELDS) as data:
        return {k: v for k, v in data.items() if isinstance(v, str)}


def urlencoded_fields(body: bytes) -> dict[str, str]:
    """A URL-encoded body's fields, with the standard library instead of Starlette's form parser,
    which works through the body byte by byte in Python.

    The same fields, in the same number, as Starlette's parser gives for any body:
    tests/unit/test_posted_fields.py checks it as a property over random and malformed bodies.
    It is `dict(parse_qsl(text, keep_blank_values=True))` (checked there too), less the
    generality every post paid for: no argument coercion, and no unquoting of a piece that
    holds nothing escaped.
    """
    fields: dict[str, str] = {}
    count = 0
    for pair in body.decode("latin-1").split("&"):
        if not pair:
            continue
        count += 1
        if count > MAX_FIELDS:
            raise Invalid(TOO_MANY_FIELDS)
        name, _, value = pair.partition("=")
        fields[_unquoted(name)] = _unquoted(value)
    return fields


def _unquoted(piece: str) -> str:
    """`urllib.parse.unquote_plus(piece)`, as parse_qsl applies it to each name and value."""
    piece = piece.replace("+", " ")
    if "%" not in piece:
        return piece
    if piece.isascii():
        # unquote's own answer for ASCII, which it reaches after splitting off non-ASCII runs.
        return unquote_to_bytes(piece).decode("utf-8", "replace")
    return unquote(piece)


def _thank(request: Request, services: Services, outcome: Signed) -> Response:
    embedding, total, name = outcome.embedding, outcome.total, outcome.name
    if outcome.pending:
        return _check_email(request, services, outcome)
    if wants_json(request):
        # What JSONResponse would send, without building its headers on every signature.
        return json_bytes(b'{"status":"signed","total":%d}' % total, NO_STORE)

    # The same page for everyone signing here but for their name and the count. The name is
    # escaped exactly as the template's autoescape would (both are markupsafe.escape);
    # "Thank you" alone when there is none is another page.
    def thanks() -> dict[str, object]:
        return context(services, embedding, total, name=slot("name") if name else "")

    page = cached_page(request, "thanks.html", embedding, total, thanks, bool(name))
    values = {"name": escape(name), **count_fields(total, embedding.pledge.goal)}
    return frame_html(fill(request, page, values), embedding)


# The same bytes for every pending answer: no count (the signature does not count yet, and a
# figure that moved would tell nothing anyway), so a new, a waiting and a counted address match.
PENDING_JSON = b'{"status":"pending"}'


def _check_email(request: Request, services: Services, outcome: Signed) -> Response:
    """ "Check your email": the same answer whether the address is new, waiting or counted."""
    embedding, name = outcome.embedding, outcome.name
    if wants_json(request):
        return json_bytes(PENDING_JSON, NO_STORE)

    def pending() -> dict[str, object]:
        return context(services, embedding, 0, name=slot("name") if name else "", pending=True)

    # Kept under the count 0 whatever the real count: the page shows none (`page_key`'s count part).
    page = cached_page(request, "thanks.html", embedding, 0, pending, bool(name), "pending")
    return frame_html(fill(request, page, {"name": escape(name), **count_fields(0, None)}), embedding)


def _ask_again(request: Request, services: Services, outcome: AskAgain) -> Response:
    """The sign form, with the person's input kept, the sentence, and a fresh form token."""
    form, message = outcome.form, outcome.message
    status_code = 400 if outcome.fields_invalid else 200
    if wants_json(request):
        body = {"status": "invalid", "errors": form.errors, "message": message, "form_token": form.form_token}
        return JSONResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})
    return respond(
        request, services, "embed.html", outcome.embedding, outcome.total, status_code, form=form, message=message
    )
