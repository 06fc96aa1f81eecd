"""`widget-server migrate-to`: a campaign moves from SQLite to PostgreSQL and back without losing or
changing a row, into empty databases only, with counts checked on arrival."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

from tests.system.postgres import SECRET, postgres_url, settings_for
from widget_server.core.models import NewSignature
from widget_server.services import organisations, partners, pledges, reports
from widget_server.storage.engines import open_store
from widget_server.storage.store import TABLES

__all__ = ["postgres_url"]

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "widget_server.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "WIDGET_SECRET_KEY": SECRET, "HOME": str(ROOT)},
        timeout=120,
    )


def everything(url: str | Path) -> dict[str, list[dict[str, object]]]:
    async def go() -> dict[str, list[dict[str, object]]]:
        found: dict[str, list[dict[str, object]]] = {}
        async with open_store(url) as store:
            for table in TABLES:
                found[table] = []
                async with store.read_table(table) as chunks:
                    async for chunk in chunks:
                        found[table].extend(chunk)
        return found

    return asyncio.run(go())


def a_campaign(database: Path) -> None:
    settings = settings_for(str(database), database.parent)

    async def go() -> None:
        async with open_store(database) as store:
            pledge = await pledges.add_pledge(store, slug="p", title="Keep our data safe", statement_html="<p>We</p>")
            await pledges.add_pledge(store, slug="q", title="Another", statement_html="<p>Two</p>", goal=5)
            riverside = (await partners.add_partner(store, settings, "p", "Riverside", ["https://faß.example"])).partner
            await partners.rotate_partner(store, settings, "p", "Riverside")
            gone = (await partners.add_partner(store, settings, "p", "Gone", ["https://gone.example"])).partner
            await partners.revoke_partner(store, "p", "Gone")
            batch = [
                NewSignature(
                    pledge.id,
                    riverside.id if i % 3 else None,
                    f"s{i}@example.org",
                    f"Zoë {i}",
                    occupation="nurse",
                    organisation="Hill School" if i % 4 == 0 else "",
                    opt_in_updates=i % 2 == 0,
                    opt_in_partner=i % 3 == 1,
                    origin="https://faß.example",
                    attribution={"source": "news", "utm_medium": "email"},
                    created_at=f"2026-11-{10 + i % 5:02d}T0{i % 10}:00:00Z",
                )
                for i in range(40)
            ]
            batch.append(
                NewSignature(pledge.id, gone.id, "late@example.org", "Late", created_at="2026-11-20T00:00:00Z")
            )
            # A partner webhook with deliveries queued (one of them dead), and signatures waiting
            # for confirmation with their emails queued: a move loses none of them.
            await store.set_partner_webhook(riverside.id, "https://faß.example/hook", "whsec_c2VjcmV0")
            await store.write_signatures(batch)
            asked = await store.insert_pledge(
                slug="asked",
                title="Confirmed",
                statement_html="<p>Three</p>",
                goal=None,
                privacy_url=None,
                contact=None,
                now="2026-11-01T00:00:00Z",
                confirm_email=True,
            )
            await store.write_signatures(
                [
                    NewSignature(
                        asked.id,
                        None,
                        f"w{i}@example.org",
                        f"Wé {i}",
                        attribution={"utm_source": "mail"},
                        created_at=f"2026-11-2{i}T10:00:00Z",
                        pending=True,
                    )
                    for i in range(3)
                ]
            )
            await store.confirm_pending(1, "2026-11-25T00:00:00Z")
            await store.queue_reminders("2026-11-22T00:00:00Z", now="2026-11-25T00:00:00Z")
            [dead] = await store.claim_outbox("2026-11-25T00:00:00Z", "2026-11-25T00:01:00Z", 1)
            await store.outbox_failed(dead.id, "The receiver answered 410.", None)
            await organisations.review_organisation(store, "p", "hill school", "approved")

    asyncio.run(go())


def test_a_campaign_moves_to_postgresql_and_back_unchanged(postgres_url: str, tmp_path: Path) -> None:
    source = tmp_path / "source.sqlite3"
    a_campaign(source)
    before = everything(source)

    moved = cli("migrate-to", postgres_url, "--db", str(source))
    assert moved.returncode == 0, moved.stderr
    assert "42 signatures" in moved.stdout  # 41 on the first pledge, one confirmed on "asked"
    assert everything(postgres_url) == before

    again = cli("migrate-to", postgres_url, "--db", str(source))  # the target is no longer empty
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1 and "already holds data" in again.stderr and "Traceback" not in again.stderr

    back = tmp_path / "back.sqlite3"
    returned = cli("migrate-to", str(back), "--db", postgres_url)
    assert returned.returncode == 0, returned.stderr
    assert everything(back) == before

    async def stats(url: str | Path) -> dict[str, object]:
        async with open_store(url) as store:
            return await reports.stats(store, "p")

    assert asyncio.run(stats(postgres_url)) == asyncio.run(stats(source)) == asyncio.run(stats(back))
    # Every table of confirmation and the outbox had rows to move.
    assert all(before[table] for table in ("pending_signatures", "confirmed_pending", "outbox"))
    assert len(before["outbox"]) > 10 and len(before["pending_signatures"]) == 2

    async def confirm(url: str | Path) -> tuple[str, str, int | None]:
        async with open_store(url) as store:
            first = await store.confirm_pending(1, "2026-11-26T00:00:00Z")
            second = await store.confirm_pending(2, "2026-11-26T00:00:00Z")
            return first.state, second.state, (await store.pledge_by_slug("asked") or _missing()).signature_count

    # The moved confirmation is remembered, and a moved pending signature can still be confirmed.
    assert asyncio.run(confirm(back)) == ("already", "confirmed", 2)
    # New rows after the move take new ids, past the copied ones.
    created = cli(
        "pledge", "add", "r", "--title", "Third", "--statement-file", str(_statement(tmp_path)), "--db", postgres_url
    )
    assert created.returncode == 0, created.stderr


def _missing() -> NoReturn:
    raise AssertionError("the pledge did not move")


def _statement(folder: Path) -> Path:
    path = folder / "statement.html"
    path.write_text("<p>Three</p>")
    return path
