"""Editing a pledge as staff do: its texts, goal, optional questions, email confirmation, and open or
closed."""

from __future__ import annotations

from collections.abc import Sequence

from widget_server import messages
from widget_server.core.models import Pledge
from widget_server.core.richtext import sanitise
from widget_server.core.signform import clean_text
from widget_server.core.times import utc_now
from widget_server.errors import Invalid
from widget_server.services.pledges import check_confirm_email, checked_privacy_url, find_pledge
from widget_server.settings import Settings
from widget_server.storage.store import Store

OPTIONAL_FIELDS = ("occupation", "organisation")
_UNCHANGED = object()


def checked_fields(fields: Sequence[str]) -> tuple[str, ...]:
    """The optional questions to ask, in the form's order; Invalid for an unknown one."""
    chosen = {f.strip() for f in fields if f.strip()}
    for name in chosen:
        if name not in OPTIONAL_FIELDS:
            raise Invalid(messages.STAFF_BAD_FIELD.format(field=name))
    return tuple(f for f in OPTIONAL_FIELDS if f in chosen)


async def edit_pledge(
    store: Store,
    slug: str,
    *,
    title: str | None = None,
    statement_html: str | None = None,
    goal: int | None | object = _UNCHANGED,
    privacy_url: str | None | object = _UNCHANGED,
    contact: str | None | object = _UNCHANGED,
    optional_fields: Sequence[str] | None = None,
    closed: bool | None = None,
    confirm_email: bool | None = None,
    settings: Settings | None = None,
) -> tuple[Pledge, list[str]]:
    """Change what is given (None or unchanged: keep); the statement is sanitised when saved.

    Switching `confirm_email` on needs `settings` with a mail server (Invalid otherwise); switching
    it off counts nothing that waits: those signatures still need their signers to confirm them.
    Returns the pledge as saved and the names of what changed ("closed"/"opened" included).
    """
    pledge = await find_pledge(store, slug)
    new_title = pledge.title if title is None else clean_text(title)
    if not new_title:
        raise Invalid(messages.TITLE_MISSING)
    statement = pledge.statement_html if statement_html is None else sanitise(statement_html).strip()
    if not statement:
        raise Invalid(messages.STATEMENT_EMPTY)
    new_goal = pledge.goal if goal is _UNCHANGED else goal
    if new_goal is not None and not (isinstance(new_goal, int) and 1 <= new_goal <= 10**9):
        raise Invalid(messages.BAD_GOAL)
    new_privacy = pledge.privacy_url if privacy_url is _UNCHANGED else checked_privacy_url(str(privacy_url or ""))
    new_contact = pledge.contact if contact is _UNCHANGED else (clean_text(str(contact or "")) or None)
    fields = pledge.optional_fields if optional_fields is None else checked_fields(optional_fields)
    is_closed = pledge.closed if closed is None else closed
    confirming = pledge.confirm_email if confirm_email is None else confirm_email
    if confirming and not pledge.confirm_email:
        check_confirm_email(confirming, settings)
    saved = await store.update_pledge(
        pledge.id,
        title=new_title,
        statement_html=statement,
        goal=new_goal,
        privacy_url=new_privacy,
        contact=new_contact,
        optional_fields=fields,
        closed_at=utc_now() if is_closed else None,
        confirm_email=confirming,
    )
    changed = [
        name
        for name, before, after in (
            ("title", pledge.title, saved.title),
            ("statement", pledge.statement_html, saved.statement_html),
            ("goal", pledge.goal, saved.goal),
            ("privacy notice", pledge.privacy_url, saved.privacy_url),
            ("contact", pledge.contact, saved.contact),
            ("optional questions", pledge.optional_fields, saved.optional_fields),
            ("email confirmation", pledge.confirm_email, saved.confirm_email),
        )
        if before != after
    ]
    if pledge.closed != saved.closed:
        changed.append("closed" if saved.closed else "opened")
    return saved, changed
