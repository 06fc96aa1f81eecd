"""The staff dashboard's server time at campaign scale: one pledge of a million signatures.

    python -m benchmarks.generate /tmp/big.sqlite3 --signatures 1000000   # once
    python -m benchmarks.dashboard /tmp/big.sqlite3                        # then

Builds the real app over that file (in-process, no network), signs a staff member in, and
times GET /admin/pledges/{slug} (every query, the charts, the template) `--rounds` times, with
the per-partner focus and a sort too; prints the median and the worst. The page reads kept
counts only, so the figure should not grow with the number of signatures (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from pathlib import Path

from starlette.testclient import TestClient

from widget_server.security.passwords import Cost
from widget_server.services import accounts
from widget_server.settings import Settings
from widget_server.storage.engines import open_store
from widget_server.web.app import create_app

from .harness import SLUG

EMAIL = "bench@campaign.example"
PASSWORD = "benchmark password"


async def _account(database: Path) -> None:
    async with open_store(database) as store:
        if await store.staff_user_by_email(EMAIL) is None:
            # A cheap hash: this measures the dashboard, not the sign-in.
            await accounts.add_user(store, EMAIL, "viewer", PASSWORD, Cost(n=2**10))


def measure(database: Path, rounds: int, slug: str = SLUG) -> dict[str, float]:
    asyncio.run(_account(database))
    settings = Settings.from_env(
        environ={}, db_path=str(database), data_dir=database.parent, secret_key="b" * 48, access_log="off"
    )
    timings: dict[str, list[float]] = {"dashboard": [], "sorted by name": [], "one partner": []}
    # CPU time of this process (the app and the in-process client) per request: on a shared,
    # busy machine the wall-clock figure also holds the time spent waiting for a core.
    cpu: dict[str, list[float]] = {name: [] for name in timings}
    with TestClient(create_app(settings)) as client:
        page = client.get("/admin/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        client.post("/admin/login", data={"email": EMAIL, "password": PASSWORD, "csrf": csrf})
        urls = {
            "dashboard": f"/admin/pledges/{slug}",
            "sorted by name": f"/admin/pledges/{slug}?sort=name&order=asc",
            "one partner": f"/admin/pledges/{slug}?partner=1",
        }
        first = client.get(urls["dashboard"])
        if first.status_code != 200:
            raise SystemExit(f"the dashboard answered {first.status_code}: {first.text[:300]}")
        for _ in range(rounds):
            for name, url in urls.items():
                started, cpu_started = time.perf_counter(), time.process_time()
                answer = client.get(url)
                timings[name].append((time.perf_counter() - started) * 1000)
                cpu[name].append((time.process_time() - cpu_started) * 1000)
                assert answer.status_code == 200
    result: dict[str, float] = {}
    for name, values in timings.items():
        result[f"{name} median ms"] = statistics.median(values)
        result[f"{name} worst ms"] = max(values)
        result[f"{name} CPU median ms"] = statistics.median(cpu[name])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.dashboard", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("database", type=Path)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--slug", default=SLUG)
    args = parser.parse_args(argv)
    if not args.database.exists():
        print(f"{args.database} does not exist: make it with python -m benchmarks.generate", file=sys.stderr)
        return 1
    for name, value in measure(args.database, args.rounds, args.slug).items():
        print(f"{name:<28} {value:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
