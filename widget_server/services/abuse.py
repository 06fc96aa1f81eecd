"""Abuse, seen without surveillance: signing bursts by client mark, email domain and partner
per hour, and invalidating one burst (its signatures removed, every count corrected).

A client mark is a keyed hash of the signing client's network under a key that lives only in
the server's memory and is replaced daily, so the panel can show "one client, 40 signatures
in an hour" and nobody can say which address that was (SECURITY.md, "Abuse marks").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from widget_server import messages
from widget_server.core.models import Pledge
from widget_server.errors import Invalid
from widget_server.storage.store import BURST_KINDS, Burst, SignatureMatch, Store

DEFAULT_THRESHOLD = 10  # signatures in one hour from one client, domain or partner
WINDOW_HOURS = (24, 48, 168)
_HOUR = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}$")


@dataclass(frozen=True)
class Panel:
    pledge: Pledge
    hours: int
    threshold: int
    bursts: dict[str, list[Burst]]  # kind → bursts, biggest first
    partner_names: dict[str, str]


async def panel(store: Store, pledge: Pledge, now: float, hours: int, threshold: int) -> Panel:
    """Every kind's bursts of at least `threshold` in the last `hours` hours up to `now`."""
    hours = hours if hours in WINDOW_HOURS else WINDOW_HOURS[0]
    threshold = max(2, threshold)
    end = datetime.fromtimestamp(now, UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    since = (end - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    until = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    found = {kind: await store.bursts(pledge.id, since, until, kind, threshold) for kind in BURST_KINDS}
    names = {str(p.id): p.name for p in await store.partners_of(pledge.id)}
    names["0"] = "Signed directly"
    return Panel(pledge, hours, threshold, found, names)


def checked_match(pledge: Pledge, hour: str, kind: str, value: str) -> SignatureMatch:
    if kind not in BURST_KINDS or not _HOUR.match(hour) or not value or len(value) > 320:
        raise Invalid(messages.BURST_BAD)
    return SignatureMatch(pledge.id, hour, kind, value)


async def preview(store: Store, match: SignatureMatch) -> int:
    return await store.count_matching(match)


async def invalidate(store: Store, match: SignatureMatch) -> int:
    """Remove the burst's signatures, every kept count corrected in the same transaction."""
    return await store.invalidate_signatures(match)


def describe(match: SignatureMatch, partner_names: dict[str, str]) -> str:
    """The burst in words, for the confirmation and the audit log (a mark is shortened)."""
    hour = f"{match.hour[:10]} {match.hour[11:]}:00–{match.hour[11:]}:59 UTC"
    if match.kind == "client":
        return f"client {match.value[:8]}… in {hour}"
    if match.kind == "domain":
        return f"email domain {match.value} in {hour}"
    return f"partner {partner_names.get(match.value, match.value)} in {hour}"
