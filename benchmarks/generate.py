"""Fill a database with many signatures quickly, for measuring the service at campaign scale.

    python -m benchmarks.generate /tmp/big.sqlite3                     # 1,000,000 across 50 partners
    python -m benchmarks.generate /tmp/small.sqlite3 --signatures 1000

The schema is the real one (the SQLite engine's migrations) and the pledge and partners are made by
the real services; the signatures go in with one INSERT … SELECT in one transaction, and the
kept counts and signature_days are then recomputed from the rows, so they agree exactly, as if
every signature had come through the writer.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import time
from pathlib import Path

from widget_server.errors import WidgetError
from widget_server.services import pledges
from widget_server.services.partners import add_partner
from widget_server.settings import Settings
from widget_server.storage.engines import open_store
from widget_server.storage.sqlite.queries import MARK_ALL_FOLDED, REBUILD_KEPT_COUNTS, fold_kept_counts

from .harness import SLUG, STATEMENT

OCCUPATIONS = ("teacher", "nurse", "doctor", "social worker", "")


async def _pledge_and_partners(settings: Settings, slug: str, partners: int) -> tuple[int, list[int]]:
    async with open_store(settings.database) as store:
        pledge = await store.pledge_by_slug(slug)
        if pledge is None:
            pledge = await pledges.add_pledge(
                store, slug=slug, title="Keep public services safe to use", statement_html=STATEMENT, goal=2_000_000
            )
        ids = [p.id for p in await store.partners_of(pledge.id)]
        for number in range(len(ids), partners):
            name = "Bench Partner" if number == 0 else f"Partner {number:02d}"
            origin = "https://partner.example" if number == 0 else f"https://partner{number:02d}.example"
            ids.append((await add_partner(store, settings, slug, name, [origin])).partner.id)
        return pledge.id, sorted(ids)[:partners]


def generate(
    database: Path,
    *,
    signatures: int = 1_000_000,
    partners: int = 50,
    slug: str = SLUG,
    days: int = 365,
    prefix: str = "signer",
    secret_key: str = "generate-makes-no-tokens-anyone-keeps-0123456789",
) -> dict[str, float]:
    """Add `signatures` rows to the pledge (created if absent); returns what was done and how fast."""
    started = time.perf_counter()
    settings = Settings.from_env(environ={}, db_path=str(database), data_dir=database.parent, secret_key=secret_key)
    pledge_id, partner_ids = asyncio.run(_pledge_and_partners(settings, slug, partners))
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        # Every row already there is in the kept counts, so that the new ones alone remain to count.
        fold_kept_counts(conn)
        # A bulk load, not a signature anyone was promised: no fsync until the end.
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -262144")
        conn.execute("CREATE TEMP TABLE bench_partners (k INTEGER PRIMARY KEY, id INTEGER, origin TEXT)")
        conn.executemany(
            "INSERT INTO bench_partners SELECT ?, id, json_extract(origins, '$[0]') FROM partners WHERE id = ?",
            list(enumerate(partner_ids)),
        )
        end = int(time.time())
        step = max(1, days * 86400 // max(1, signatures))
        conn.execute("BEGIN IMMEDIATE")
        # One signature in ten is direct; the others are spread evenly over the partners, and
        # over `days` days up to now. Emails sort in insertion order, so the unique index grows
        # at its end.
        conn.execute(
            """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
            INSERT INTO signatures (pledge_id, partner_id, email, name, occupation, organisation,
                                    opt_in_updates, opt_in_partner, origin, source, created_at)
            SELECT :pledge,
                   CASE WHEN i % 10 = 0 THEN NULL ELSE p.id END,
                   printf('%s%08d@example.org', :prefix, i),
                   'Signer ' || i,
                   CASE i % 5 WHEN 0 THEN 'teacher' WHEN 1 THEN 'nurse' WHEN 2 THEN 'doctor'
                              WHEN 3 THEN 'social worker' ELSE '' END,
                   CASE WHEN i % 97 = 0 THEN 'Community Group ' || (i % 500) ELSE '' END,
                   i % 3 = 0,
                   i % 10 != 0 AND i % 4 = 0,
                   CASE WHEN i % 10 = 0 THEN '' ELSE p.origin END,
                   CASE WHEN i % 7 = 0 THEN 'newsletter' ELSE '' END,
                   strftime('%Y-%m-%dT%H:%M:%SZ', :end - (:count - i) * :step, 'unixepoch')
            FROM n JOIN bench_partners p ON p.k = (i / 10) % :partners
            ON CONFLICT (pledge_id, email) DO NOTHING
            """,
            {
                "count": signatures,
                "pledge": pledge_id,
                "prefix": prefix,
                "end": end,
                "step": step,
                "partners": len(partner_ids),
            },
        )
        # Counts and days recomputed from the rows: consistent whatever was there before.
        conn.execute(
            "UPDATE pledges SET signature_count = (SELECT COUNT(*) FROM signatures WHERE pledge_id = :p) WHERE id = :p",
            {"p": pledge_id},
        )
        conn.execute(
            "UPDATE partners SET signature_count = (SELECT COUNT(*) FROM signatures s WHERE s.partner_id = partners.id)"
            " WHERE pledge_id = ?",
            (pledge_id,),
        )
        conn.execute("DELETE FROM signature_days WHERE pledge_id = ?", (pledge_id,))
        conn.execute(
            "INSERT INTO signature_days (pledge_id, partner_id, day, count)"
            " SELECT pledge_id, COALESCE(partner_id, 0), substr(created_at, 1, 10), COUNT(*)"
            " FROM signatures WHERE pledge_id = ? GROUP BY 1, 2, 3",
            (pledge_id,),
        )
        # The staff dashboard's kept counts (per hour, minute, occupation, source, partner).
        for sql in REBUILD_KEPT_COUNTS:
            conn.execute(sql, {"p": pledge_id})
        conn.execute(MARK_ALL_FOLDED)  # the new rows, this pledge's only unfolded ones, are counted now
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        total = conn.execute("SELECT signature_count FROM pledges WHERE id = ?", (pledge_id,)).fetchone()[0]
    finally:
        conn.close()
    seconds = time.perf_counter() - started
    return {
        "signatures": float(total),
        "partners": float(len(partner_ids)),
        "seconds": seconds,
        "megabytes": database.stat().st_size / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("database", type=Path)
    parser.add_argument("--signatures", type=int, default=1_000_000)
    parser.add_argument("--partners", type=int, default=50)
    parser.add_argument("--slug", default=SLUG)
    parser.add_argument("--days", type=int, default=365, help="spread the signatures over this many days")
    parser.add_argument("--prefix", default="signer", help="emails are PREFIXnnnnnnnn@example.org")
    args = parser.parse_args(argv)
    if args.signatures < 1 or args.partners < 1:
        parser.error("--signatures and --partners must be at least 1")
    try:
        done = generate(
            args.database,
            signatures=args.signatures,
            partners=args.partners,
            slug=args.slug,
            days=args.days,
            prefix=args.prefix,
        )
    except (sqlite3.Error, WidgetError) as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 1
    print(
        f"{args.database}: {done['signatures']:,.0f} signatures across {done['partners']:.0f} partners,"
        f" {done['megabytes']:,.0f} MB, in {done['seconds']:.1f} s"
    )
    problems = asyncio.run(_integrity(args.database))
    if problems:
        print("generate: counts disagree with rows: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


async def _integrity(database: Path) -> list[str]:
    async with open_store(database) as store:
        return await store.integrity()


if __name__ == "__main__":
    raise SystemExit(main())
