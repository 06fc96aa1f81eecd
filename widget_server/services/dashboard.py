"""What the staff dashboard and a partner's own report show, read from the kept counts only.

Every figure comes from kept counts (per pledge, partner, day, hour, minute, occupation and
source), exact whenever the Store hands them out (moved in the signing transaction, or on SQLite
folded in from the rows before the read), so a page costs the same at a million signatures as at
ten; the per-partner numbers are `reports.stats`'s (`widget-server stats`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from widget_server.core.models import ATTRIBUTION_PARAMS, Partner, Pledge
from widget_server.services.reports import confirmation_rate, total_confirmation
from widget_server.storage.store import DIRECT, OccupationCount, Store

TOP_OCCUPATIONS = 10
TOP_SERIES = 5  # partners with a band of their own in the chart; the rest are "Other partners"
HOURS_SHOWN = 48
RATE_MINUTES = 10  # "the rate now" is the average over this many minutes, this one included
SORT_KEYS = ("name", "signatures", "last_24h", "opt_in_updates", "opt_in_partner", "first_at", "last_at")
DIRECT_KEY = "direct"
OTHER_KEY = "other"


@dataclass(frozen=True)
class PartnerRow:
    key: str  # the partner's id as text, or "direct"
    name: str
    signatures: int
    share: float  # of the pledge's total, 0..1
    last_24h: int
    opt_in_updates: int
    opt_in_partner: int
    first_at: str | None
    last_at: str | None
    revoked: bool = False
    partner: Partner | None = None
    pending: int = 0  # signatures waiting for their signer's confirmation (not counted)
    confirmation_rate: float | None = None  # confirmed / asked to confirm; None: never asked


@dataclass(frozen=True)
class Series:
    key: str
    name: str
    values: list[int]


@dataclass(frozen=True)
class Chart:
    """Signatures per time step (labels: UTC days or hours), one band per series."""

    unit: str  # "day" or "hour"
    labels: list[str]
    series: list[Series]

    @property
    def totals(self) -> list[int]:
        return [sum(s.values[i] for s in self.series) for i in range(len(self.labels))]


@dataclass(frozen=True)
class SourceRow:
    partner_key: str
    partner_name: str
    tags: dict[str, str]
    count: int


@dataclass(frozen=True)
class Dashboard:
    pledge: Pledge
    total: int
    last_hour: int
    last_24h: int
    rate_per_minute: float
    since_24h: str  # the first hour counted in "last 24 hours", as 'YYYY-MM-DDTHH'
    partners: list[PartnerRow]
    direct: PartnerRow
    days: Chart
    hours: Chart
    occupations: list[tuple[str, int]]  # top N by count, then ("other", n) if any
    occupations_not_given: int
    focus: str  # "" (every signature), "direct" or a partner id: occupations and sources shown for it
    sources: list[SourceRow]
    pending_organisations: int = 0
    sort: str = "signatures"
    descending: bool = True
    extra: dict[str, object] = field(default_factory=dict)
    # Email confirmation: asked for (or signatures from when it was still wait); how many wait, and
    # the share confirmed (the "pending rate" that moderators watch to spot fraud).
    confirming: bool = False
    pending: int = 0
    confirmation_rate: float | None = None

    @property
    def progress(self) -> float:
        return min(1.0, self.total / self.pledge.goal) if self.pledge.goal else 0.0


def hour_of(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H")


def _at(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def _hours_back(now: float, hours: int) -> list[str]:
    """The `hours` UTC hours up to and including the current one, oldest first."""
    current = _at(now).replace(minute=0, second=0, microsecond=0)
    return [hour_of(current - timedelta(hours=back)) for back in range(hours - 1, -1, -1)]


def _days_between(first: str, last: str) -> list[str]:
    day = datetime.strptime(first, "%Y-%m-%d")
    end = datetime.strptime(last, "%Y-%m-%d")
    days = []
    while day <= end:
        days.append(day.strftime("%Y-%m-%d"))
        day += timedelta(days=1)
    return days


def _band(partner_id: int | None, banded: set[int]) -> str:
    if partner_id is None:
        return DIRECT_KEY
    return str(partner_id) if partner_id in banded else OTHER_KEY


def _series(bands: Sequence[tuple[str, str]], labels: list[str], cells: dict[tuple[str, str], int]) -> list[Series]:
    return [Series(key, name, [cells.get((label, key), 0) for label in labels]) for key, name in bands]


def sorted_rows(rows: Iterable[PartnerRow], sort: str, descending: bool) -> list[PartnerRow]:
    """The per-partner table in the order staff asked for; ties by name."""
    key = sort if sort in SORT_KEYS else "signatures"
    by_name = sorted(rows, key=lambda r: r.name.lower())
    if key == "name":
        return list(reversed(by_name)) if descending else by_name
    missing = "" if key in ("first_at", "last_at") else 0
    return sorted(by_name, key=lambda r: getattr(r, key) or missing, reverse=descending)


def focus_of(text: str, partners: Iterable[Partner]) -> str:
    """A focus asked for in a URL, kept only if it names this pledge's partner (or "direct")."""
    if text == DIRECT_KEY or text in {str(p.id) for p in partners}:
        return text
    return ""


async def dashboard(
    store: Store, pledge: Pledge, now: float, *, sort: str = "signatures", descending: bool = True, focus: str = ""
) -> Dashboard:
    """Everything on the pledge's dashboard at `now` (seconds since the epoch)."""
    total, _ = await store.counts(pledge.id)
    partners = await store.partners_of(pledge.id)
    focus = focus_of(focus, partners)
    kept = {t.partner_id: t for t in await store.partner_totals(pledge.id)}
    hours = _hours_back(now, HOURS_SHOWN)
    since_24h = hours[-24]
    hour_rows = await store.hour_counts(pledge.id, hours[0])
    last_24h_of: dict[int | None, int] = defaultdict(int)
    for entry in hour_rows:
        if entry.hour >= since_24h:
            last_24h_of[entry.partner_id] += entry.count
    minute_now = _at(now).replace(second=0, microsecond=0)
    minutes = await store.minute_counts(pledge.id, (minute_now - timedelta(minutes=59)).strftime("%Y-%m-%dT%H:%M"))
    pending_of = await store.pending_counts(pledge.id)
    asked_of = await store.confirmation_counts(pledge.id)
    confirming = pledge.confirm_email or any(pending_of.values()) or bool(asked_of)
    rate_from = (minute_now - timedelta(minutes=RATE_MINUTES - 1)).strftime("%Y-%m-%dT%H:%M")

    def row(key: str, name: str, partner_id: int | None, signatures: int, partner: Partner | None) -> PartnerRow:
        totals = kept.get(partner_id)
        pending = pending_of.get(DIRECT if partner_id is None else partner_id, 0)
        return PartnerRow(
            key=key,
            name=name,
            signatures=signatures,
            share=signatures / total if total else 0.0,
            last_24h=last_24h_of.get(partner_id, 0),
            opt_in_updates=totals.opt_in_updates if totals else 0,
            opt_in_partner=totals.opt_in_partner if totals else 0,
            first_at=totals.first_at if totals else None,
            last_at=totals.last_at if totals else None,
            revoked=partner.revoked if partner else False,
            partner=partner,
            pending=pending,
            confirmation_rate=confirmation_rate(asked_of.get(DIRECT if partner_id is None else partner_id)),
        )

    rows = [row(str(p.id), p.name, p.id, p.signature_count, p) for p in partners]
    direct = row(DIRECT_KEY, "Signed directly", None, total - sum(p.signature_count for p in partners), None)

    # The chart's bands: the biggest partners on their own, the others together, then direct.
    top = [p for p in partners if p.signature_count > 0][:TOP_SERIES]
    banded = {p.id for p in top}
    bands = [(str(p.id), p.name) for p in top]
    if any(p.id not in banded and p.signature_count for p in partners):
        bands.append((OTHER_KEY, "Other partners"))
    bands.append((DIRECT_KEY, "Signed directly"))

    day_cells: dict[tuple[str, str], int] = defaultdict(int)
    day_rows = await store.day_counts(pledge.id)
    for day in day_rows:
        day_cells[(day.day, _band(day.partner_id, banded))] += day.count
    today = _at(now).strftime("%Y-%m-%d")
    first_day = min([day_rows[0].day, today]) if day_rows else today
    last_day = max([day_rows[-1].day, today]) if day_rows else today
    day_labels = _days_between(first_day, last_day)
    hour_cells: dict[tuple[str, str], int] = defaultdict(int)
    for entry in hour_rows:
        hour_cells[(entry.hour, _band(entry.partner_id, banded))] += entry.count

    occupation_filter = None if not focus else (DIRECT if focus == DIRECT_KEY else int(focus))
    occupations, not_given = top_occupations(await store.occupation_counts(pledge.id, occupation_filter))
    names = {p.id: p.name for p in partners}
    sources = [
        SourceRow(
            DIRECT_KEY if s.partner_id is None else str(s.partner_id),
            "Signed directly" if s.partner_id is None else names.get(s.partner_id, "?"),
            dict(zip(ATTRIBUTION_PARAMS, s.tags, strict=True)),
            s.count,
        )
        for s in await store.source_counts(pledge.id)
    ]
    if focus:
        sources = [s for s in sources if s.partner_key == focus]
    pending = len(await store.organisations(pledge.id, "pending"))
    return Dashboard(
        pledge=pledge,
        total=total,
        last_hour=sum(m.count for m in minutes),
        last_24h=sum(last_24h_of.values()),
        rate_per_minute=sum(m.count for m in minutes if m.minute >= rate_from) / RATE_MINUTES,
        since_24h=since_24h,
        partners=sorted_rows(rows, sort, descending),
        direct=direct,
        days=Chart("day", day_labels, _series(bands, day_labels, day_cells)),
        hours=Chart("hour", hours, _series(bands, hours, hour_cells)),
        occupations=occupations,
        occupations_not_given=not_given,
        focus=focus,
        sources=sources,
        pending_organisations=pending,
        sort=sort if sort in SORT_KEYS else "signatures",
        descending=descending,
        confirming=confirming,
        pending=sum(pending_of.values()),
        confirmation_rate=confirmation_rate(total_confirmation(asked_of)),
    )


def top_occupations(counts: Iterable[OccupationCount], top: int = TOP_OCCUPATIONS) -> tuple[list[tuple[str, int]], int]:
    """The `top` occupations by count, then ("other", the rest); and how many gave none."""
    given: list[tuple[str, int]] = []
    not_given = 0
    for entry in counts:
        occupation, count = entry.occupation, entry.count
        if occupation:
            given.append((occupation, count))
        else:
            not_given += count
    shown = given[:top]
    rest = sum(count for _, count in given[top:])
    if rest:
        shown.append(("other", rest))
    return shown, not_given


@dataclass(frozen=True)
class PartnerReport:
    """A partner's own numbers: nothing of another partner, nothing of any person."""

    pledge: Pledge
    partner: Partner
    pledge_total: int  # public anyway: the counter shows it
    row: PartnerRow
    days: Chart
    hours: Chart
    sources: list[SourceRow]


async def partner_report(store: Store, pledge: Pledge, partner: Partner, now: float) -> PartnerReport:
    total, _ = await store.counts(pledge.id)
    kept = next((t for t in await store.partner_totals(pledge.id) if t.partner_id == partner.id), None)
    hours = _hours_back(now, HOURS_SHOWN)
    hour_cells = {
        (h.hour, "own"): h.count for h in await store.hour_counts(pledge.id, hours[0]) if h.partner_id == partner.id
    }
    day_cells = {(d.day, "own"): d.count for d in await store.day_counts(pledge.id) if d.partner_id == partner.id}
    today = _at(now).strftime("%Y-%m-%d")
    days = sorted(day for day, _ in day_cells)
    day_labels = _days_between(min([*days[:1], today]), max([*days[-1:], today]))
    band = [("own", partner.name)]
    row = PartnerRow(
        key=str(partner.id),
        name=partner.name,
        signatures=partner.signature_count,
        share=partner.signature_count / total if total else 0.0,
        last_24h=sum(count for (hour, _), count in hour_cells.items() if hour >= hours[-24]),
        opt_in_updates=kept.opt_in_updates if kept else 0,
        opt_in_partner=kept.opt_in_partner if kept else 0,
        first_at=kept.first_at if kept else None,
        last_at=kept.last_at if kept else None,
        revoked=partner.revoked,
        partner=partner,
    )
    sources = [
        SourceRow(str(partner.id), partner.name, dict(zip(ATTRIBUTION_PARAMS, s.tags, strict=True)), s.count)
        for s in await store.source_counts(pledge.id)
        if s.partner_id == partner.id
    ]
    return PartnerReport(
        pledge=pledge,
        partner=partner,
        pledge_total=total,
        row=row,
        days=Chart("day", day_labels, _series(band, day_labels, day_cells)),
        hours=Chart("hour", hours, _series(band, hours, hour_cells)),
        sources=sources,
    )
