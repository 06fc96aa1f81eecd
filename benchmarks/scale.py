"""The service at campaign scale: a million signatures across fifty partners.

    python -m benchmarks.scale                       # 1,000,000 signatures; updates BENCHMARKS.md
    python -m benchmarks.scale --signatures 100000 --no-write

Measured against a small database (1,000 signatures) made the same way:
- reading the count (the two indexed reads behind it, and the counter over HTTP) costs the same;
- `widget-server stats` and the embed page answer in under a second;
- `widget-server export` streams: its memory grows by under 50 MB whatever the row count;
- the server's resident memory stays under 150 MB after serving every kind of request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.server_harness import http_get

from .generate import generate
from .harness import (
    PARTNER_ORIGIN,
    ROOT,
    SLUG,
    BenchmarkError,
    Pledge,
    Server,
    keep_logs,
    machine,
    prepare_pledge,
    run_wrk,
    start_server,
)

SCALE_BEGIN = "<!-- benchmarks.scale:begin -->"
SCALE_END = "<!-- benchmarks.scale:end -->"
SMALL = 1_000


def _count_read_us(database: Path, calls: int = 2000) -> dict[str, Any]:
    """Median microseconds of the counter's reads: bare SQL, and through aiosqlite as the server does."""
    import sqlite3

    from widget_server.storage.sqlite import db, queries

    conn = sqlite3.connect(database)
    pledge_id = conn.execute("SELECT id FROM pledges WHERE slug = ?", (SLUG,)).fetchone()[0]
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        conn.execute("SELECT signature_count FROM pledges WHERE id = ?", (pledge_id,)).fetchone()
        conn.execute("SELECT id, signature_count FROM partners WHERE pledge_id = ?", (pledge_id,)).fetchall()
        timings.append(time.perf_counter() - started)
    plans = [
        " ".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", (pledge_id,)))
        for sql in (
            "SELECT signature_count FROM pledges WHERE id = ?",
            "SELECT id, signature_count FROM partners WHERE pledge_id = ?",
        )
    ]
    conn.close()

    async def through_aiosqlite() -> float:
        aconn = await db.connect(database)
        try:
            samples = []
            for _ in range(calls // 4):
                started = time.perf_counter()
                await queries.counts(aconn, pledge_id)
                samples.append(time.perf_counter() - started)
            return statistics.median(samples)
        finally:
            await aconn.close()

    found: dict[str, Any] = {
        "sql_us": statistics.median(timings) * 1e6,
        "aiosqlite_us": asyncio.run(through_aiosqlite()) * 1e6,
        "plan": "; ".join(plans),
    }
    return found


# Runs the CLI's own main() and then reports the process's peak resident memory. VmHWM belongs
# to the address space made by exec, so unlike the rusage of a child it cannot include the
# memory of the parent that forked it (this harness, after generating a million rows).
_MEASURED_CLI = """
import sys
from widget_server.cli import main
try:
    code = main(sys.argv[2:])
finally:
    with open("/proc/self/status") as status, open(sys.argv[1], "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM")).split()[1])
sys.exit(code)
"""


def _cli_run(pledge: Pledge, *args: str) -> dict[str, float]:
    """Run `widget-server ARGS` with stdout to /dev/null: wall seconds, peak resident MB."""
    with tempfile.TemporaryDirectory() as tmp:
        peak, err = Path(tmp) / "peak", Path(tmp) / "stderr"
        started = time.perf_counter()
        with open(err, "wb") as stderr:
            done = subprocess.run(
                [sys.executable, "-c", _MEASURED_CLI, str(peak), *args, "--db", str(pledge.database)],
                cwd=ROOT,
                env={**os.environ, **pledge.env},
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                timeout=600,
                check=False,
            )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise BenchmarkError(f"widget-server {' '.join(args)} exited {done.returncode}: {err.read_text()}")
        return {"seconds": seconds, "peak_mb": int(peak.read_text()) / 1024}


def _median_cli(pledge: Pledge, *args: str, runs: int = 3) -> dict[str, float]:
    results = [_cli_run(pledge, *args) for _ in range(runs)]
    return {"seconds": statistics.median(r["seconds"] for r in results), "peak_mb": max(r["peak_mb"] for r in results)}


def _page_timings(server: Server, path: str, requests: int = 30) -> dict[str, float]:
    """First answer on a cold server, then the median and worst of sequential ones (seconds)."""
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        status, _ = http_get(server.url + path, timeout=10)
        samples.append(time.perf_counter() - started)
        if status != 200:
            raise BenchmarkError(f"{path} answered {status}")
    return {"first": samples[0], "median": statistics.median(samples[1:]), "max": max(samples[1:])}


def _server_rss_mb(server: Server) -> dict[str, float]:
    rss = server.rss_kib()
    return {"rss": rss.get("VmRSS", 0) / 1024, "peak": rss.get("VmHWM", 0) / 1024}


def _sizes(work: Path, signatures: int, seconds: int) -> dict[str, Any]:
    """Everything measured at one size, on a fresh database of that size."""
    directory = work / f"n{signatures}"
    directory.mkdir()
    database = directory / "scale.sqlite3"
    made = generate(database, signatures=signatures, partners=50)
    pledge = prepare_pledge(directory, database)
    found: dict[str, Any] = {"signatures": signatures, "generate": made, "count_read": _count_read_us(database)}
    found["stats_cli"] = _median_cli(pledge, "stats", pledge.slug, "--json", runs=3 if seconds > 1 else 1)
    server = start_server("ours", ["-m", "widget_server.cli", "serve", "--db", str(database)], pledge.env, directory)
    try:
        embed = f"/embed/{pledge.slug}?token={pledge.partner_token}&parent={PARTNER_ORIGIN}"
        found["embed_page"] = _page_timings(server, embed)
        count_path = f"/api/pledges/{pledge.slug}/count"
        found["count_page"] = _page_timings(server, count_path)
        counter = run_wrk(server.url + count_path, seconds=seconds, connections=32, threads=1, work_dir=directory)
        found["counter_http"] = {"rps": counter.rps, "p99_ms": counter.latency_ms["p99"]}
        page = http_get(server.url + embed)[1]
        token = re.search(rb'name="form_token" value="([^"]+)"', page)
        if not token:
            raise BenchmarkError("the embed page has no form token")
        sign = f"/embed/{pledge.slug}/sign"
        run_wrk(
            server.url + sign,
            seconds=seconds,
            connections=32,
            threads=1,
            work_dir=directory,
            script="sign",
            script_args=[token.group(1).decode(), sign, "text/html", "scale"],
        )
        run_wrk(server.url + embed, seconds=seconds, connections=32, threads=1, work_dir=directory)
        found["server_after_load"] = _server_rss_mb(server)

        # The export, while the server keeps serving the counter: both processes' memory.
        before = _server_rss_mb(server)
        load = threading.Thread(
            target=run_wrk,
            kwargs={
                "url": server.url + count_path,
                "seconds": seconds,
                "connections": 8,
                "threads": 1,
                "work_dir": directory,
            },
        )
        load.start()
        found["export_cli"] = _cli_run(pledge, "export", pledge.slug)
        load.join()
        found["server_during_export"] = {"before": before["rss"], "after": _server_rss_mb(server)["rss"]}
        # The same process doing almost nothing (stats) is the baseline the export grows from.
        found["export_cli"]["growth_mb"] = found["export_cli"]["peak_mb"] - found["stats_cli"]["peak_mb"]
    finally:
        code = server.stop()
    if code != 0:
        raise BenchmarkError(f"the server exited {code} on SIGTERM; see {server.log_path}")
    errors = server.log_errors()
    if errors:
        raise BenchmarkError(f"the server logged {len(errors)} errors; logs kept in {keep_logs(directory)}")
    return found


def measure(signatures: int = 1_000_000, seconds: int = 3) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="widget-scale-") as tmp:
        work = Path(tmp)
        small = _sizes(work, min(SMALL, signatures), seconds)
        # A run no bigger than the small database (the smoke test's) measures it once.
        large = small if signatures <= SMALL else _sizes(work, signatures, seconds)
    return {"machine": machine(), "small": small, "large": large}


def _ok(condition: bool) -> str:
    return "yes" if condition else "**no**"


def render(report: dict[str, Any]) -> str:
    m, small, large = report["machine"], report["small"], report["large"]
    n, s = f"{large['signatures']:,}", f"{small['signatures']:,}"
    gen = large["generate"]
    export = large["export_cli"]
    rows = [
        (
            "Count read, the two indexed SELECTs (median µs)",
            f"{small['count_read']['sql_us']:.1f}",
            f"{large['count_read']['sql_us']:.1f}",
            "same at both sizes",
            _ok(large["count_read"]["sql_us"] < 3 * small["count_read"]["sql_us"] + 5),
        ),
        (
            "Count read through aiosqlite, as the server does (median µs)",
            f"{small['count_read']['aiosqlite_us']:.0f}",
            f"{large['count_read']['aiosqlite_us']:.0f}",
            "same at both sizes",
            _ok(large["count_read"]["aiosqlite_us"] < 3 * small["count_read"]["aiosqlite_us"] + 50),
        ),
        (
            "Counter over HTTP, wrk 32 connections (req/s)",
            f"{small['counter_http']['rps']:,.0f}",
            f"{large['counter_http']['rps']:,.0f}",
            "same at both sizes",
            _ok(large["counter_http"]["rps"] > 0.7 * small["counter_http"]["rps"]),
        ),
        (
            "`widget-server stats --json`, whole process (s)",
            f"{small['stats_cli']['seconds']:.2f}",
            f"{large['stats_cli']['seconds']:.2f}",
            "< 1 s",
            _ok(large["stats_cli"]["seconds"] < 1),
        ),
        (
            "Embed page, first answer from a cold server (s)",
            f"{small['embed_page']['first']:.3f}",
            f"{large['embed_page']['first']:.3f}",
            "< 1 s",
            _ok(large["embed_page"]["first"] < 1),
        ),
        (
            "Embed page, median / worst of 29 more (ms)",
            f"{small['embed_page']['median'] * 1000:.1f} / {small['embed_page']['max'] * 1000:.1f}",
            f"{large['embed_page']['median'] * 1000:.1f} / {large['embed_page']['max'] * 1000:.1f}",
            "< 1 s",
            _ok(large["embed_page"]["max"] < 1),
        ),
        (
            "`widget-server export`: time (s) / peak memory (MB)",
            f"{small['export_cli']['seconds']:.2f} / {small['export_cli']['peak_mb']:.0f}",
            f"{export['seconds']:.1f} / {export['peak_mb']:.0f}",
            "streams",
            "—",
        ),
        (
            "Export's memory growth over the same command doing `stats` (MB)",
            f"{small['export_cli']['growth_mb']:.1f}",
            f"{export['growth_mb']:.1f}",
            "< 50 MB",
            _ok(export["growth_mb"] < 50),
        ),
        (
            "Server resident memory while the export runs: before → after (MB)",
            f"{small['server_during_export']['before']:.0f} → {small['server_during_export']['after']:.0f}",
            f"{large['server_during_export']['before']:.0f} → {large['server_during_export']['after']:.0f}",
            "grows < 50 MB",
            _ok(large["server_during_export"]["after"] - large["server_during_export"]["before"] < 50),
        ),
        (
            "Server resident memory after signing, embed and counter load: now / peak (MB)",
            f"{small['server_after_load']['rss']:.0f} / {small['server_after_load']['peak']:.0f}",
            f"{large['server_after_load']['rss']:.0f} / {large['server_after_load']['peak']:.0f}",
            "< 150 MB",
            _ok(large["server_after_load"]["peak"] < 150),
        ),
    ]
    lines = [
        f"Run on {m['date']}: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, SQLite {m['sqlite']}."
        f" `python -m benchmarks.generate` made {n} signatures across 50 partners"
        f" ({gen['megabytes']:,.0f} MB) in {gen['seconds']:.1f} s.",
        f"Query plans for the count: {large['count_read']['plan']}.",
        "",
        f"| Measure | {s} signatures | {n} signatures | Target | Met |",
        "|---|---:|---:|---|---|",
        *(f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows),
        "",
        f"The export wrote {n} rows at {large['signatures'] / export['seconds']:,.0f} rows/s.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from .run import write_markdown

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--signatures", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=3, help="seconds of wrk load per step")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    try:
        report = measure(args.signatures, args.duration)
    except BenchmarkError as exc:
        print(f"scale: {exc}", file=sys.stderr)
        return 1
    section = render(report)
    print(section)
    if not args.no_write:
        write_markdown(args.output, section, SCALE_BEGIN, SCALE_END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
