"""Onboarding partners: add one with its origins, hand over its snippets, rotate or revoke its token."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from widget_server import messages
from widget_server.core.models import Partner, Pledge
from widget_server.core.origins import normalise_origin
from widget_server.core.signform import clean_text
from widget_server.core.snippets import all_snippets
from widget_server.core.times import utc_now
from widget_server.errors import Conflict, Invalid, NotFound
from widget_server.security.tokens import Tokens
from widget_server.services.pledges import find_pledge
from widget_server.settings import Settings
from widget_server.storage.store import Store


@dataclass(frozen=True)
class PartnerCredentials:
    """What staff hand a partner: its current token and the three snippets built on it."""

    partner: Partner
    token: str
    snippets: dict[str, str]

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.partner.id,
            "name": self.partner.name,
            "origins": list(self.partner.origins),
            "token_version": self.partner.token_version,
            "token": self.token,
            **self.snippets,
        }


def credentials(settings: Settings, pledge: Pledge, partner: Partner) -> PartnerCredentials:
    token = Tokens(settings.signing_keys()).partner_token(partner)
    return PartnerCredentials(partner, token, all_snippets(settings.public_url, pledge.slug, token, pledge.goal))


async def find_partner(store: Store, pledge: Pledge, name: str) -> Partner:
    partner = await store.partner_by_name(pledge.id, name)
    if partner is None:
        raise NotFound(messages.NO_PARTNER_CALLED.format(slug=pledge.slug, name=name))
    return partner


async def add_partner(
    store: Store, settings: Settings, slug: str, name: str, origins: Sequence[str]
) -> PartnerCredentials:
    """A new partner allowed on `origins` (normalised as browsers send them), with its snippets."""
    pledge = await find_pledge(store, slug)
    name = clean_text(name)
    if not name:
        raise Invalid(messages.PARTNER_NAME_MISSING)
    if not origins:
        raise Invalid(messages.ORIGIN_MISSING)
    normalised = list(dict.fromkeys(normalise_origin(o) for o in origins))
    try:
        partner = await store.insert_partner(pledge_id=pledge.id, name=name, origins=normalised, now=utc_now())
    except Conflict:
        raise Conflict(messages.PARTNER_EXISTS.format(slug=slug, name=name)) from None
    return credentials(settings, pledge, partner)


async def rotate_partner(store: Store, settings: Settings, slug: str, name: str) -> PartnerCredentials:
    """A new token; the old one is refused within WIDGET_CACHE_SECONDS. Reinstates a revoked partner."""
    pledge = await find_pledge(store, slug)
    partner = await find_partner(store, pledge, name)
    return credentials(settings, pledge, await store.rotate_partner(partner.id))


async def revoke_partner(store: Store, slug: str, name: str) -> Partner:
    """Switch the partner's widget off; its signatures stay credited to it."""
    pledge = await find_pledge(store, slug)
    partner = await find_partner(store, pledge, name)
    await store.revoke_partner(partner.id, utc_now())
    return partner


async def set_origins(store: Store, slug: str, name: str, origins: Sequence[str]) -> Partner:
    """New allowed origins; they are in the token, so the partner gets a new one."""
    pledge = await find_pledge(store, slug)
    partner = await find_partner(store, pledge, name)
    if not origins:
        raise Invalid(messages.ORIGIN_MISSING)
    return await store.set_partner_origins(partner.id, list(dict.fromkeys(normalise_origin(o) for o in origins)))
