"""The database's own ceiling for signing on PostgreSQL: pgbench inserting rows of a signature's
shape, with the pledge's count moved in the same transaction, from 32 clients on this machine.

    python -m benchmarks.pgbench postgresql://postgres@127.0.0.1:5432/postgres [--seconds 10]

It creates a throw-away database on that server with the service's real schema (its migrations),
runs pgbench twice (one signature per transaction, as an unbatched server would commit, and 32
per transaction, as our group commit does under load) and prints rows per second for each. The
ratio of our signing throughput to these says what our code costs on top of the database.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.engines import _with_database
from widget_server.storage.engines import open_store

ROW = (
    "INSERT INTO signatures (pledge_id, partner_id, email, name, occupation, organisation, opt_in_updates,"
    " opt_in_partner, origin, source, created_at) VALUES (1, 1, 'pgbench-' || :client_id || '-' || {n}"
    " || '-' || (random() * 1e15)::bigint || '@example.org', 'Bench Signer', 'nurse', '', false, false,"
    " 'https://partner.example', 'bench', now()) ON CONFLICT (pledge_id, email) DO NOTHING;"
)


def script(rows: int) -> str:
    inserts = "\n".join(ROW.format(n=n) for n in range(rows))
    return (
        f"BEGIN;\n{inserts}\n"
        f"UPDATE pledges SET signature_count = signature_count + {rows} WHERE id = 1;\n"
        f"UPDATE partners SET signature_count = signature_count + {rows} WHERE id = 1;\n"
        "COMMIT;\n"
    )


async def _prepare(url: str) -> None:
    async with open_store(url) as store:
        await store.insert_pledge(
            slug="bench",
            title="Bench",
            statement_html="<p>b</p>",
            goal=None,
            privacy_url=None,
            contact=None,
            now="2026-11-30T00:00:00Z",
        )
        await store.insert_partner(
            pledge_id=1, name="Bench", origins=["https://partner.example"], now="2026-11-30T00:00:00Z"
        )


def run(server_url: str, seconds: int, clients: int = 32) -> dict[str, float]:
    if shutil.which("pgbench") is None:
        raise SystemExit("pgbench is missing (Debian: apt-get install postgresql-contrib or postgresql).")
    database = "widget_pgbench"
    subprocess.run(["psql", server_url, "-qc", f"DROP DATABASE IF EXISTS {database}"], check=True)
    subprocess.run(["psql", server_url, "-qc", f"CREATE DATABASE {database}"], check=True)
    url = _with_database(server_url, database)
    try:
        asyncio.run(_prepare(url))
        found = {}
        with tempfile.TemporaryDirectory() as tmp:
            for rows in (1, 32):
                path = Path(tmp) / f"sign{rows}.sql"
                path.write_text(script(rows))
                done = subprocess.run(
                    ["pgbench", "-n", "-f", str(path), "-c", str(clients), "-j", "2", "-T", str(seconds), url],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                tps = float(re.search(r"tps = ([0-9.]+)", done.stdout).group(1))  # type: ignore[union-attr]
                found[f"rows_per_second_{rows}_per_transaction"] = tps * rows
        return found
    finally:
        subprocess.run(["psql", server_url, "-qc", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"], check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "url", help="a PostgreSQL server (any database on it), e.g. postgresql://postgres@127.0.0.1/postgres"
    )
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args(argv)
    for name, value in run(args.url, args.seconds).items():
        print(f"{name}: {value:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
