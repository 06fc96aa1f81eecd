"""Moderating the public list of organisations that have signed: list, approve, hide."""

from __future__ import annotations

from widget_server import messages
from widget_server.core.signform import clean_text
from widget_server.core.times import utc_now
from widget_server.errors import NotFound
from widget_server.services.pledges import find_pledge
from widget_server.storage.store import Store

ORGANISATION_STATUSES = ("pending", "approved", "hidden")


async def organisations(store: Store, slug: str, status: str | None = None) -> list[dict[str, object]]:
    """Organisations named by the pledge's signers, with how many signed for each, by name."""
    pledge = await find_pledge(store, slug)
    return await store.organisations(pledge.id, status)


async def review_organisation(store: Store, slug: str, name: str, status: str) -> None:
    """Approve an organisation for the public list, or hide it from there."""
    pledge = await find_pledge(store, slug)
    if not await store.set_organisation_status(pledge.id, clean_text(name), status, utc_now()):
        raise NotFound(messages.NO_ORGANISATION_CALLED.format(name=name, slug=slug))
