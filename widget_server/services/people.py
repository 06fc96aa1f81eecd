"""Data-protection requests for one person: everything kept about an email address, and erasure."""

from __future__ import annotations

from widget_server import messages
from widget_server.core.signform import normalise_email
from widget_server.errors import Invalid
from widget_server.storage.store import Store


def checked_email(email: str) -> str:
    """The address as signatures store it (the same normalisation as signing), or Invalid."""
    normalised = normalise_email(email)
    if "@" not in normalised:
        raise Invalid(messages.NOT_AN_EMAIL.format(email=email))
    return normalised


async def person_data(store: Store, email: str) -> list[dict[str, object]]:
    """Everything kept about one email address, across pledges (a subject access request)."""
    return await store.signatures_of(checked_email(email))


async def erase_person(store: Store, email: str) -> int:
    """Delete one person's signatures everywhere, with every kept count corrected to match."""
    return await store.erase_signatures(checked_email(email))
