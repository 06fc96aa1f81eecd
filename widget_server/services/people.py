"""Data-protection requests for one person: everything kept about an email address, and erasure."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Erasure:
    """How many signatures were erased, and whether the database's files no longer hold them."""

    signatures: int
    scrubbed: bool


async def erase_person(store: Store, email: str) -> Erasure:
    """Delete one person's signatures everywhere, with every kept count corrected to match, then make
    them unreadable in the database's files; `scrubbed` is False when a reader still holds an old copy."""
    erased = await store.erase_signatures(checked_email(email))
    return Erasure(erased, await store.scrub())
