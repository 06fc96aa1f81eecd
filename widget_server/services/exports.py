"""CSV exports for staff: a pledge's signatures, one partner's, or only those who agreed to
hear from that partner (what the partner may receive). Streamed a row at a time, every cell
made safe to open in a spreadsheet, so a million rows take flat memory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from widget_server.core.csvsafe import CSVLines
from widget_server.core.models import EXPORT_COLUMNS, Partner, Pledge
from widget_server.storage.store import DIRECT, Store


def describe(partner: Partner | None, direct: bool, opted_in_only: bool) -> str:
    if direct:
        return "direct signatures"
    if partner is None:
        return "all signatures"
    if opted_in_only:
        return f"{partner.name}: only those who agreed to hear from it"
    return f"{partner.name}: all its signatures"


def filename(pledge: Pledge, partner: Partner | None, direct: bool, opted_in_only: bool) -> str:
    part = "direct" if direct else (f"partner-{partner.id}" if partner else "all")
    return f"{pledge.slug}-{part}{'-opted-in' if opted_in_only else ''}.csv"


async def csv_lines(
    store: Store, pledge: Pledge, partner: Partner | None = None, direct: bool = False, opted_in_only: bool = False
) -> AsyncIterator[str]:
    """The header line, then one line per signature, in signing order."""
    lines = CSVLines()
    yield lines.line(EXPORT_COLUMNS)
    if partner is None and not direct:
        rows = store.export_rows(pledge.id)
    else:
        rows = store.export_partner_rows(pledge.id, DIRECT if direct else partner.id, opted_in_only)  # type: ignore[union-attr]
    async with rows as found:
        async for row in found:
            yield lines.line(row)
