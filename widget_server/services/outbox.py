"""The outbox as staff see it: what is queued or dead and why, retry dead messages, discard one.

Emails and webhooks are queued by the store in the transaction that made them due and sent by the
outbox worker (delivery/worker.py); a message out of attempts is "dead" and waits here for staff.
Retrying and discarding are recorded in the audit log. A message holds no personal data (only the id
of what it is about), so neither does anything shown here.
"""

from __future__ import annotations

from dataclasses import dataclass

from widget_server import messages
from widget_server.core.times import utc_now
from widget_server.errors import Invalid, NotFound
from widget_server.services import audit
from widget_server.storage.store import OutboxMessage, Store

#: How each kind of message is named to staff.
KIND_NAMES = {"confirm": "confirmation email", "remind": "reminder email", "webhook": "webhook"}


@dataclass(frozen=True)
class QueuedMessage:
    """An outbox message with what staff need to recognise it."""

    message: OutboxMessage
    partner: str  # the webhook's partner, "" for an email
    pledge: str  # the partner's pledge slug, "" for an email

    @property
    def kind(self) -> str:
        return kind_name(self.message.kind)


def kind_name(kind: str) -> str:
    return KIND_NAMES.get(kind, kind)


async def messages_in(store: Store, *, dead_only: bool = False, limit: int = 100) -> list[QueuedMessage]:
    """Queued messages, oldest first (dead ones only with `dead_only`), with their partner's names."""
    found = await store.outbox_messages(dead_only=dead_only, limit=limit)
    names: dict[int, tuple[str, str]] = {}
    listed = []
    for message in found:
        partner, pledge = "", ""
        if message.partner_id is not None:
            if message.partner_id not in names:
                row = await store.partner_by_id(message.partner_id)
                slug = ""
                if row is not None:
                    owner = await store.pledge_by_id(row.pledge_id)
                    slug = owner.slug if owner is not None else ""
                names[message.partner_id] = (row.name if row is not None else "", slug)
            partner, pledge = names[message.partner_id]
        listed.append(QueuedMessage(message, partner, pledge))
    return listed


async def _find(store: Store, message_id: int) -> OutboxMessage:
    message = await store.outbox_message(message_id)
    if message is None:
        raise NotFound(messages.OUTBOX_NO_MESSAGE.format(id=message_id))
    return message


async def retry(store: Store, actor: str, message_id: int | None, *, at: str | None = None) -> int:
    """Make one dead message (None: every dead message) due now, its attempts starting again; how many."""
    now = at or utc_now()
    if message_id is not None:
        message = await _find(store, message_id)
        if not message.dead:
            raise Invalid(messages.OUTBOX_NOT_DEAD.format(id=message_id))
    count = await store.outbox_retry(message_id, now)
    if message_id is None and count == 0:
        raise Invalid(messages.OUTBOX_NONE_DEAD)
    subject = f"message {message_id}" if message_id is not None else "every dead message"
    await audit.record(store, actor, "outbox retried", subject=subject, detail=f"{count} messages", at=now)
    return count


async def discard(store: Store, actor: str, message_id: int, *, at: str | None = None) -> OutboxMessage:
    """Remove a queued or dead message without sending it."""
    message = await _find(store, message_id)
    if not await store.outbox_discard(message_id):
        raise NotFound(messages.OUTBOX_NO_MESSAGE.format(id=message_id))
    detail = kind_name(message.kind) + (f", {message.attempts} attempts" if message.attempts else "")
    await audit.record(store, actor, "outbox discarded", subject=f"message {message_id}", detail=detail, at=at)
    return message
