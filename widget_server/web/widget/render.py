"""What the frame pages share: their template context, the key a kept page is stored under, and
their headers.

The widget's pages (the sign form, the thank-you page, the counter badge) are kept rendered with
slots for what changes per request (`web.fast.pagecache`); `page_key` says exactly what else
a page shows, so a kept page is used only where it shows the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from widget_server.core.attribution import Embedding
from widget_server.memo import BoundedMemo
from widget_server.web.edge.encoding import gzip_wanted
from widget_server.web.edge.headers import csp, secured
from widget_server.web.fast.pagecache import KeptPage, slot
from widget_server.web.fast.responses import RawHeaders, html
from widget_server.web.runtime import Services

NO_STORE = secured([(b"cache-control", b"no-store")])
COUNT_SLOTS = {name: slot(name) for name in ("total", "total_text", "progress")}


def context(services: Services, embedding: Embedding, total: int, **extra: object) -> dict[str, object]:
    """What the templates show; the count's three forms come from `count_fields`.

    Keep `page_key` in step: it must hold everything this shows but the count itself.
    """
    pledge = embedding.pledge
    share_url = services.settings.public_url + pledge.page_path
    if embedding.partner_token:
        share_url += "?" + urlencode({"token": embedding.partner_token})
    extra.update(
        pledge=pledge,
        # Staff rich text, sanitised by richtext.sanitise when it was saved.
        statement=Markup(pledge.statement_html),
        partner=embedding.partner,
        parent_origin=embedding.parent_origin,
        one_signer=total == 1,
        share_url=share_url,
        privacy_url=pledge.privacy_link,
    )
    extra.update(count_fields(total, extra.get("goal", pledge.goal)))
    return extra


def count_fields(total: int, goal: object) -> dict[str, str]:
    """The count as the templates print it: raw, with thousands separators, and toward the goal."""
    progress = min(total, goal) if isinstance(goal, int) and goal else 0
    return {"total": str(total), "total_text": f"{total:,}", "progress": str(progress)}


def page_key(template: str, embedding: Embedding, total: int, *variant: Hashable) -> tuple[Hashable, ...]:
    """The key of a kept page: everything `context` shows but the count, which is a slot.

    The pledge's and partner's fields are named one by one, not the rows themselves: a row
    re-read with a higher count must find the same page. Whether the count is one is in the
    key, as "1 person has" and "2 people have" differ in more than the number. `variant` is
    what else the template is given (the thank-you page's name or not, the badge's goal).
    """
    pledge, partner = embedding.pledge, embedding.partner
    partner_origins: tuple[str, ...]
    if partner is None:
        partner_id, partner_name, partner_origins, token_version = None, "", (), 0
    else:
        partner_id, partner_name = partner.id, partner.name
        partner_origins, token_version = partner.origins, partner.token_version
    return (
        template,
        pledge.id,
        pledge.slug,
        pledge.title,
        pledge.statement_html,
        pledge.goal,
        pledge.privacy_url,
        pledge.contact,
        pledge.closed,  # the form or "closed"
        pledge.optional_fields,  # which questions the form asks
        partner_id,
        partner_name,
        partner_origins,
        token_version,
        embedding.partner_token,  # the share link
        embedding.frame_ancestors,
        embedding.parent_origin,
        total == 1,
        *variant,
    )


def cached_page(
    request: Request,
    template: str,
    embedding: Embedding,
    total: int,
    make_context: Callable[[], dict[str, object]],
    *variant: Hashable,
) -> KeptPage:
    """The page kept under `page_key(template, embedding, total, *variant)`, rendered with the
    count as slots on first use."""

    def render_with_slots() -> str:
        return render(request, template, {**make_context(), **COUNT_SLOTS})

    page: KeptPage = request.app.state.page_cache.get(page_key(template, embedding, total, *variant), render_with_slots)
    return page


def fill(request: Request, page: KeptPage, values: Mapping[str, str]) -> bytes:
    """`page` with its slots filled, carrying what gzip needs only if the answer can be gzipped."""
    return page.fill(values, gzip_wanted(request.scope))


def render(request: Request, template: str, values: dict[str, object]) -> str:
    return str(request.app.state.templates.get_template(template).render(values))


# A frame page's headers but its length, per set of framing origins (which come from tokens).
_frame_headers: BoundedMemo[tuple[str, ...], RawHeaders] = BoundedMemo(1024, 2 * 1024 * 1024)


def frame_headers(frame_ancestors: tuple[str, ...]) -> RawHeaders:
    """The headers of a page framable by exactly `frame_ancestors`, never stored by caches."""
    headers = _frame_headers.get(frame_ancestors)
    if headers is None:
        policy = csp(frame_ancestors).encode()
        headers = _frame_headers.put(
            frame_ancestors, secured([(b"content-security-policy", policy), (b"cache-control", b"no-store")])
        )
    return headers


def frame_html(body: bytes | str, embedding: Embedding, status_code: int = 200) -> Response:
    """An HTML page shown inside the embedding's frames."""
    if isinstance(body, str):
        body = body.encode()
    return html(body, frame_headers(embedding.frame_ancestors), status_code)


def respond(
    request: Request,
    services: Services,
    template: str,
    embedding: Embedding,
    total: int,
    status_code: int = 200,
    **extra: object,
) -> Response:
    """A frame page rendered afresh (for what differs per person, such as a form with errors)."""
    page = render(request, template, context(services, embedding, total, **extra))
    return frame_html(page, embedding, status_code)
