"""The outbox for staff: emails and webhooks waiting to be sent, the dead ones (out of attempts) with
their last error, and the buttons to retry or discard them. For campaigners and owners."""

from __future__ import annotations

from starlette.responses import Response

from widget_server import messages
from widget_server.core.times import iso_utc
from widget_server.errors import Invalid, NotFound
from widget_server.services import outbox
from widget_server.web.staff.common import Staff, confirm_page, confirmed, staff_view


async def _page(staff: Staff, status_code: int = 200, **extra: object) -> Response:
    dead = await outbox.messages_in(staff.store, dead_only=True)
    queued = [m for m in await outbox.messages_in(staff.store) if not m.message.dead]
    context = {"dead": dead, "queued": queued, "attempts": staff.services.settings.outbox_attempts}
    return staff.render("outbox.html", {**context, **extra}, status_code)


def _message_id(staff: Staff) -> int:
    text = staff.form.get("id", "").strip()
    if not text.isdigit():
        raise Invalid(messages.STAFF_NOT_A_NUMBER.format(what="The message"))
    return int(text)


def _wake(staff: Staff) -> None:
    """A retried message is due now: this process's worker sends it at once rather than at its next poll."""
    worker = getattr(staff.request.app.state, "outbox", None)
    if worker is not None:
        worker.wake()


@staff_view("campaign")
async def outbox_page(staff: Staff) -> Response:
    """GET /admin/outbox."""
    return await _page(staff)


@staff_view("campaign")
async def retry(staff: Staff) -> Response:
    """POST /admin/outbox/retry: one dead message (id), or every dead one (all=yes)."""
    try:
        message_id = None if staff.form.get("all") == "yes" else _message_id(staff)
        count = await outbox.retry(staff.store, staff.user.email, message_id, at=iso_utc(staff.now))
    except (Invalid, NotFound) as exc:
        return await _page(staff, 400, error=exc.message)
    _wake(staff)
    return await _page(staff, done=messages.outbox_retried(count))


@staff_view("campaign")
async def discard(staff: Staff) -> Response:
    """POST /admin/outbox/discard, after a confirmation."""
    try:
        message_id = _message_id(staff)
    except Invalid as exc:
        return await _page(staff, 400, error=exc.message)
    if not confirmed(staff):
        return confirm_page(
            staff,
            f"Discard message {message_id}?",
            "It is removed from the outbox and never sent. The signature it is about stays as it is.",
            "Discard the message",
            "/admin/outbox",
        )
    try:
        await outbox.discard(staff.store, staff.user.email, message_id, at=iso_utc(staff.now))
    except NotFound as exc:
        return await _page(staff, 400, error=exc.message)
    return await _page(staff, done=messages.OUTBOX_DISCARDED.format(id=message_id))
