"""What campaign staff read: totals and the per-partner split over time, and the CSV export."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from widget_server import messages
from widget_server.core.csvsafe import CSVLines
from widget_server.core.models import EXPORT_COLUMNS
from widget_server.errors import Invalid, NotFound
from widget_server.services.pledges import find_pledge
from widget_server.storage.store import DIRECT, Store


def confirmation_rate(asked_confirmed: tuple[int, int] | None) -> float | None:
    """Of the signatures asked to confirm, the share confirmed (Store.confirmation_counts); None
    before any was asked.

    A low rate from one partner, or overall, is what e-petitions' moderators watch for: addresses
    typed by a script are never confirmed. The counts are of events, so a purge of unconfirmed
    signatures does not raise it, and signatures counted while confirmation was off do not count.
    """
    asked, confirmed = asked_confirmed or (0, 0)
    return round(confirmed / asked, 4) if asked else None


def total_confirmation(counts: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """The pledge's (asked, confirmed), every partner's and direct together."""
    return sum(a for a, _ in counts.values()), sum(c for _, c in counts.values())


async def stats(store: Store, slug: str) -> dict[str, object]:
    """Totals, the per-partner split and signatures per day, all from the kept counts.

    The counts are of signatures that count (confirmed ones, when the pledge asks for
    confirmation); `pending` is those still waiting for their signer, and `confirmation_rate`
    the share confirmed, in total and per partner (None when nothing was ever asked).
    """
    pledge = await find_pledge(store, slug)
    total, _ = await store.counts(pledge.id)
    partners = await store.partners_of(pledge.id)
    pending_of = await store.pending_counts(pledge.id)
    pending = sum(pending_of.values())
    confirming = await store.confirmation_counts(pledge.id)

    names = {p.id: p.name for p in partners}
    totals: dict[str, int] = {}
    direct: dict[str, int] = {}
    by_partner: dict[str, dict[str, int]] = {}
    last_day: dict[int, str] = {}
    for entry in await store.day_counts(pledge.id):
        totals[entry.day] = totals.get(entry.day, 0) + entry.count
        direct.setdefault(entry.day, 0)
        on_day = by_partner.setdefault(entry.day, {})
        if entry.partner_id is None:
            direct[entry.day] += entry.count
        else:
            on_day[names.get(entry.partner_id, str(entry.partner_id))] = entry.count
            last_day[entry.partner_id] = entry.day
    days = [{"day": day, "total": totals[day], "direct": direct[day], "partners": by_partner[day]} for day in totals]
    partner_sum = sum(p.signature_count for p in partners)
    direct_pending = pending_of.get(DIRECT, 0)
    return {
        "pledge": pledge.slug,
        "total": total,
        "direct": total - partner_sum,
        "goal": pledge.goal,
        "confirm_email": pledge.confirm_email,
        "pending": pending,
        "confirmation_rate": confirmation_rate(total_confirmation(confirming)),
        "direct_pending": direct_pending,
        "direct_confirmation_rate": confirmation_rate(confirming.get(DIRECT)),
        "partners": [
            {
                "name": p.name,
                "count": p.signature_count,
                "revoked": p.revoked,
                "last_signed_on": last_day.get(p.id),
                "pending": pending_of.get(p.id, 0),
                "confirmation_rate": confirmation_rate(confirming.get(p.id)),
            }
            for p in partners
        ],
        "days": days,
    }


async def export_csv(store: Store, slug: str, out: TextIO) -> int:
    """Stream the pledge's signatures as spreadsheet-safe CSV; returns the number of rows."""
    pledge = await find_pledge(store, slug)
    lines = CSVLines()
    out.write(lines.line(EXPORT_COLUMNS))
    count = 0
    async with store.export_rows(pledge.id) as rows:
        async for row in rows:
            out.write(lines.line(row))
            count += 1
    out.flush()
    return count


async def backup(store: Store, dest: Path) -> None:
    """A consistent copy of the database at `dest`, a new file in an existing folder."""
    if dest.exists():
        raise Invalid(messages.BACKUP_EXISTS.format(dest=dest))
    if not dest.parent.exists():
        raise NotFound(messages.BACKUP_FOLDER_MISSING.format(folder=dest.parent))
    await store.backup(dest)
