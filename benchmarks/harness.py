"""The parts of a benchmark run: processes, wrk, the machine, and the report.

Servers run in their own processes and wrk in another, all over 127.0.0.1, so the figures
include the real HTTP stack and nothing runs in the process being measured but the server.
The servers are started by the harness the tests use too (tests/server_harness.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

# ROOT and Server are this module's too: the benchmarks and the crash tests import them from here.
from tests.server_harness import ROOT as ROOT
from tests.server_harness import Server as Server
from tests.server_harness import ServerError

LUA_DIR = Path(__file__).resolve().parent / "lua"
PARTNER_ORIGIN = "https://partner.example"
SLUG = "bench-pledge"
STATEMENT = (
    "<p>When people ask a public service for help, the details they give must be used for that"
    " help alone.</p><p>We ask every school, surgery and job centre to promise that what they"
    " know about the people they serve is <strong>never</strong> handed to immigration"
    " enforcement.</p>"
)


class BenchmarkError(RuntimeError):
    """Something kept the run from producing honest figures; the message says what."""


def keep_logs(work_dir: Path) -> Path:
    """Copy a failed run's server logs where they outlive its temporary directory."""
    kept = ROOT / "benchmarks" / "results" / f"logs-{time.strftime('%Y%m%d-%H%M%S')}"
    kept.mkdir(parents=True, exist_ok=True)
    for log in work_dir.rglob("*.log"):
        shutil.copy(log, kept / f"{log.parent.name}-{log.name}")
    return kept


def start_server(
    name: str,
    args: Sequence[str],
    env: dict[str, str],
    log_dir: Path,
    port: int | None = None,
    ready_path: str = "/healthz",
    timeout: float = 30.0,
    cwd: Path = ROOT,
) -> Server:
    """Start `python args…` in `cwd` with --port, and wait until `ready_path` answers 200.

    The one real-server harness (tests/server_harness.py) does it; `env` is added to this
    process's environment, and a server that does not start is a BenchmarkError.
    """
    try:
        return Server.launch(
            name, args, {**os.environ, **env}, log_dir, port=port, ready=[ready_path], timeout=timeout, cwd=cwd
        )
    except ServerError as exc:
        raise BenchmarkError(str(exc)) from exc


@dataclass
class WrkResult:
    requests: int
    seconds: float
    errors: dict[str, int]
    latency_ms: dict[str, float]
    # The server's own CPU time per answered request (all its threads). Unlike req/s it hardly
    # moves when other work shares the machine, so its ratio is the steadier comparison.
    server_cpu_us: float = 0.0
    # Latency at each tenth of a percentile from 90 to 99.9 (report.lua), to pool rounds' p99.
    tail_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @classmethod
    def combined(cls, rounds: Sequence[WrkResult]) -> WrkResult:
        """Rounds of one figure as one: totals summed, the median round's p50, and the p99 of all
        their requests together (from each round's tail; the worst round's when one lacks it)."""
        if len(rounds) == 1:
            return rounds[0]
        requests = sum(r.requests for r in rounds)
        errors: dict[str, int] = {}
        for r in rounds:
            for kind, n in r.errors.items():
                errors[kind] = errors.get(kind, 0) + n
        latency = {
            "p50": statistics.median(r.latency_ms["p50"] for r in rounds),
            "p99": _pooled_p99(rounds),
        }
        cpu = sum(r.server_cpu_us * r.requests for r in rounds) / requests if requests else 0.0
        return cls(requests, sum(r.seconds for r in rounds), errors, latency, cpu)

    @property
    def failures(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rps": round(self.rps, 1)}


def _pooled_p99(rounds: Sequence[WrkResult]) -> float:
    """The latency 99% of all the rounds' requests stayed within.

    Each round's tail gives, for any latency x, the share of its requests slower than x (read
    conservatively: the next tenth of a percentile up); the answer is the least x at which
    those shares, weighted by each round's requests, come to at most 1%.
    """
    if any(len(r.tail_ms) != 100 for r in rounds):
        return max(r.latency_ms["p99"] for r in rounds)
    total = sum(r.requests for r in rounds)

    def slower_than(x: float) -> float:
        requests = 0.0
        for r in rounds:
            within = sum(1 for v in r.tail_ms if v <= x)  # points of the tail (90.0, 90.1, …) within x
            # At least (90 + (within - 1) / 10)% of this round were within x; below the tail, any.
            requests += r.requests * (1.0 if within == 0 else (101 - within) / 1000)
        return requests

    return round(min(x for r in rounds for x in r.tail_ms if slower_than(x) <= 0.01 * total), 2)


def wrk_available() -> str:
    path = shutil.which("wrk")
    if not path:
        raise BenchmarkError("wrk is not installed: sudo apt-get install wrk (scripts/test does it).")
    return path


def run_wrk(
    url: str,
    *,
    seconds: int,
    connections: int,
    threads: int,
    script: str | None = None,
    script_args: Sequence[str] = (),
    headers: dict[str, str] | None = None,
    work_dir: Path,
) -> WrkResult:
    """One wrk run; the Lua report line is parsed, a non-answer or a non-2xx is an error."""
    lua = (LUA_DIR / f"{script}.lua").read_text() if script else ""
    script_path = work_dir / f"wrk-{script or 'get'}.lua"
    script_path.write_text(lua + "\n" + (LUA_DIR / "report.lua").read_text())
    command = [
        wrk_available(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script_path),
    ]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    if script_args:
        command += ["--", *script_args]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    match = re.search(r"^WRKJSON (.*)$", completed.stdout, re.MULTILINE)
    if completed.returncode != 0 or not match:
        raise BenchmarkError(f"wrk failed ({completed.returncode}): {completed.stderr or completed.stdout}")
    data = json.loads(match.group(1))
    return WrkResult(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        errors={k: int(v) for k, v in data["errors"].items()},
        latency_ms={k: round(v / 1000, 2) for k, v in data["latency_us"].items()},
        tail_ms=[v / 1000 for v in data.get("tail_us", [])],
    )


def _versions(names: Sequence[str]) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine() -> dict[str, Any]:
    """What the figures were taken on: they only mean something next to this."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    wrk_version = ""
    with contextlib.suppress(OSError, BenchmarkError):
        out = subprocess.run([wrk_available(), "-v"], capture_output=True, text=True, check=False)
        wrk_version = (out.stdout + out.stderr).splitlines()[0].split(" Copyright")[0]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor() or "unknown",
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "wrk": wrk_version,
        "packages": _versions(
            ["starlette", "uvicorn", "uvloop", "httptools", "aiosqlite", "jinja2", "itsdangerous", "python-multipart"]
        ),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


@dataclass
class Pledge:
    """A fresh database with one pledge and one partner, and what the load needs to use them."""

    database: Path | str  # a SQLite file, or a postgresql:// URL
    secret_key: str
    slug: str
    partner_token: str
    env: dict[str, str] = field(default_factory=dict)


def prepare_pledge(work_dir: Path, database: Path | str | None = None) -> Pledge:
    """Create (or reuse) the benchmark pledge and its partner through the real services; `database` is
    a SQLite path or a postgresql:// URL."""
    from widget_server.services import partners, pledges
    from widget_server.settings import Settings
    from widget_server.storage.engines import open_store

    secret = secrets.token_urlsafe(32)
    database = database or work_dir / "bench.sqlite3"
    settings = Settings.from_env(environ={}, data_dir=work_dir, db_path=str(database), secret_key=secret)

    async def go() -> str:
        async with open_store(database) as store:
            pledge = await store.pledge_by_slug(SLUG)
            if pledge is None:
                pledge = await pledges.add_pledge(
                    store, slug=SLUG, title="Keep public services safe to use", statement_html=STATEMENT, goal=10_000
                )
            partner = await store.partner_by_name(pledge.id, "Bench Partner")
            if partner is None:
                return (await partners.add_partner(store, settings, SLUG, "Bench Partner", [PARTNER_ORIGIN])).token
            return partners.credentials(settings, pledge, partner).token

    token = asyncio.run(go())
    env = {
        "WIDGET_DATA_DIR": str(work_dir),
        "WIDGET_DB": str(database),
        "WIDGET_SECRET_KEY": secret,
        "WIDGET_RATE_LIMIT": "off",
        "WIDGET_PARTNER_RATE_LIMIT": "off",
        "WIDGET_MIN_FILL_SECONDS": "0",
    }
    return Pledge(database, secret, SLUG, token, env)


def integrity(database: Path | str) -> tuple[int, list[str]]:
    """(rows, problems): the stored signatures, and where kept counts disagree with them."""
    from widget_server.storage.engines import open_store

    async def go() -> tuple[int, list[str]]:
        async with open_store(database) as store:
            rows = 0
            async with store.read_table("signatures") as chunks:
                async for chunk in chunks:
                    rows += len(chunk)
            return rows, await store.integrity()

    return asyncio.run(go())


@contextlib.contextmanager
def servers_stopped(servers: list[Server]) -> Iterator[list[Server]]:
    """Stop every server started inside, gracefully, whatever happens."""
    try:
        yield servers
    finally:
        for server in reversed(servers):
            server.stop()
