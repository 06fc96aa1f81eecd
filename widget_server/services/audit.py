"""The audit log: who did what, and when, for every staff action in the browser or the CLI.

Entries name the staff member (their email), or `cli:` and the operating-system user for the
command line. A signer is never named in full: an entry about a person carries a masked
address (`a…@example.org`), so erasing someone does not leave their address in the log.
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Mapping

from widget_server.core.times import utc_now
from widget_server.storage.store import AuditEntry, Store

log = logging.getLogger(__name__)

# Every action the log records, as the audit page's filter offers them.
ACTIONS = (
    "login",
    "logout",
    "login failed",
    "sessions ended",
    "password changed",
    "user added",
    "user removed",
    "role changed",
    "pledge created",
    "pledge edited",
    "pledge closed",
    "pledge opened",
    "partner created",
    "origins edited",
    "token rotated",
    "partner revoked",
    "partner reinstated",
    "partner link shown",
    "webhook set",
    "webhook removed",
    "organisation approved",
    "organisation hidden",
    "export downloaded",
    "person found",
    "person exported",
    "person erased",
    "burst invalidated",
    "outbox retried",
    "outbox discarded",
)


def cli_actor() -> str:
    """Who runs a CLI command, as the log names them: `cli:` and the operating-system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers) and no LOGNAME/USER
        return "cli:unknown"


def mask_email(email: str) -> str:
    """`ana@example.org` → `a…@example.org`: enough to tell entries apart, not to name anyone."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}…@{domain}" if domain else "…"


async def record(
    store: Store,
    actor: str,
    action: str,
    *,
    pledge: str = "",
    subject: str = "",
    detail: str = "",
    at: str | None = None,
) -> None:
    """Append one entry; `action` is one of ACTIONS."""
    assert action in ACTIONS, action
    await store.record_audit(
        at=at or utc_now(), actor=actor, action=action, pledge=pledge, subject=subject, detail=detail
    )


async def entries(
    store: Store, filters: Mapping[str, str], before_id: int | None, limit: int = 100
) -> list[AuditEntry]:
    """The newest entries first, filtered by exact actor, action and pledge (empty: any)."""
    return await store.audit_entries(
        actor=filters.get("actor") or None,
        action=filters.get("action") or None,
        pledge=filters.get("pledge") or None,
        before_id=before_id,
        limit=limit,
    )


# The existing CLI commands that change something or hand data out, and how each is logged:
# (command, action) → (audit action, the argument naming the subject).
_CLI = {
    ("pledge", "add"): ("pledge created", ""),
    ("partner", "add"): ("partner created", "name"),
    ("partner", "rotate"): ("token rotated", "name"),
    ("partner", "revoke"): ("partner revoked", "name"),
    ("orgs", "approve"): ("organisation approved", "name"),
    ("orgs", "hide"): ("organisation hidden", "name"),
    ("export", None): ("export downloaded", ""),
    ("person", "export"): ("person exported", "email"),
    ("person", "erase"): ("person erased", "email"),
}


def is_audited(command: str, action: str | None) -> bool:
    return (command, action) in _CLI


async def record_cli(store: Store, command: str, action: str | None, arguments: Mapping[str, object]) -> bool:
    """Log a CLI command that has just succeeded, if it is one that is logged; True when it was."""
    entry = _CLI.get((command, action))
    if entry is None:
        return False
    what, subject_arg = entry
    subject = str(arguments.get(subject_arg) or "") if subject_arg else ""
    if subject_arg == "email":
        subject = mask_email(subject.strip().lower())
    detail = "all signatures as CSV" if command == "export" else ""
    await record(store, cli_actor(), what, pledge=str(arguments.get("slug") or ""), subject=subject, detail=detail)
    return True
