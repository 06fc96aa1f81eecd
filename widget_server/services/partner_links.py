"""A partner's read-only report link: signed, naming one partner and its token version.

Rotating the partner's token (or changing its origins) moves the version and so ends every link
issued before; revoking the partner closes its report until it is reinstated. A link altered
to name another partner fails its signature and shows nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from widget_server import messages
from widget_server.core.models import Partner, Pledge
from widget_server.errors import NotFound
from widget_server.services.pledges import find_pledge
from widget_server.settings import Settings
from widget_server.storage.store import Store

PATH = "/partner-report/"


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(
        settings.signing_keys(), salt="partner-report", signer_kwargs={"digest_method": hashlib.sha256}
    )


def link_for(settings: Settings, partner: Partner) -> str:
    token = _serializer(settings).dumps({"p": partner.id, "v": partner.token_version})
    return f"{settings.public_url}{PATH}{token}"


async def partner_link(store: Store, settings: Settings, slug: str, name: str) -> tuple[Pledge, Partner, str]:
    from widget_server.services.partners import find_partner

    pledge = await find_pledge(store, slug)
    partner = await find_partner(store, pledge, name)
    return pledge, partner, link_for(settings, partner)


async def partner_of_link(store: Store, settings: Settings, token: str) -> tuple[Pledge, Partner]:
    """The pledge and partner a link is for; NotFound if it is altered, replaced or revoked."""
    refused = NotFound(messages.PARTNER_LINK_BAD)
    try:
        data: Any = _serializer(settings).loads(token)
        partner_id, version = int(data["p"]), int(data["v"])
    except (BadSignature, KeyError, TypeError, ValueError):
        raise refused from None
    partner = await store.partner_by_id(partner_id)
    if partner is None or partner.revoked or partner.token_version != version:
        raise refused
    pledge = await store.pledge_by_id(partner.pledge_id)
    if pledge is None:
        raise refused
    return pledge, partner
