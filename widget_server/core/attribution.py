"""Who gets credit: the partner a page or a signature is attributed to, and the page that frames it.

Pure decisions on values already read (a verified token's claim, the partner's current row, the
request's `parent`, Referer and Sec-Fetch-Dest): the embed page, the counter badge, the count API
and the signing use case all decide here, so their answers cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from widget_server.core.models import Partner, Pledge
from widget_server.errors import NotAllowed, TokenError
from widget_server.messages import REVOKED, ROTATED, TAMPERED, WRONG_PLEDGE, WRONG_SITE


@dataclass(frozen=True)
class PartnerClaim:
    """What a partner token says, once its signature is verified."""

    partner_id: int
    origins: tuple[str, ...]
    version: int


@dataclass(frozen=True)
class Embedding:
    """Where a page is shown: the pledge, the partner (None: direct), who may frame it."""

    pledge: Pledge
    partner: Partner | None
    partner_token: str  # for the share link; "" when direct
    frame_ancestors: tuple[str, ...]
    parent_origin: str = ""


def credited_partner(pledge: Pledge, claim: PartnerClaim, partner: Partner | None) -> Partner:
    """The partner a page of `pledge`, shown with a verified partner token, is credited to.

    `partner` is the claimed partner's current row (None: there is none), so a revocation or a
    rotation counts from the moment the row says so, whatever was remembered about the token.
    Refused with TokenError; it carries the token's origins whenever the token was genuinely
    issued, so the refusal may be shown inside that partner's own pages.
    """
    if partner is None:
        raise TokenError(TAMPERED)
    if partner.revoked:
        raise TokenError(REVOKED, claim.origins)
    if partner.token_version != claim.version:
        raise TokenError(ROTATED, claim.origins)
    if partner.pledge_id != pledge.id:
        raise TokenError(WRONG_PLEDGE, claim.origins)
    return partner


def signing_partner(partner_id: int | None, version: int, partner: Partner | None) -> Partner | None:
    """The partner a signature is credited to: the one its form token names (None: direct).

    `version` is the partner token version the form was rendered under; `partner` is that
    partner's current row. A form lives no longer than the partner token it came from: once
    that token is revoked or rotated out, every use of the form (a post, or asking again) is
    refused, and a rotation after a revocation does not revive it (the version has moved on).
    """
    if partner_id is None:
        return None
    if partner is None:
        raise NotAllowed(REVOKED)
    if partner.revoked:
        raise TokenError(REVOKED, partner.origins)
    if partner.token_version != version:
        raise TokenError(ROTATED, partner.origins)
    return partner


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of an absolute URL; "" when it has none or cannot be read."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket: a header we cannot read says nothing
        return ""
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def embedding_origin(parent: str, referer: str, fetch_dest: str | None, allowed: tuple[str, ...]) -> str:
    """The page that frames us, if we can tell ("" if not); NotAllowed when it is not `allowed`.

    `parent` is what the loader passes; the Referer says the same for an iframe load. A top-level
    visit (a shared link: Sec-Fetch-Dest other than iframe) has no embedding page, whatever its
    Referer. A browser without Fetch Metadata sends no Sec-Fetch-Dest (None): its Referer counts.
    """
    found = ""
    if parent:
        if parent not in allowed:
            raise NotAllowed(WRONG_SITE)
        found = parent
    if referer and (fetch_dest is None or fetch_dest == "iframe"):
        origin = origin_of(referer)
        if origin:
            if origin not in allowed:
                raise NotAllowed(WRONG_SITE)
            found = found or origin
    return found
