"""Staff commands while the server takes a surge: neither side sees "database is locked".

`widget-server stats`, `export` and `backup` run as separate processes against the database the
real server is writing, as campaign staff would run them in the middle of a busy day.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from benchmarks.harness import ROOT, Pledge, Server, integrity, prepare_pledge
from tests.test_crash import assert_log_is_clean, form_token, serving, stored_emails

pytestmark = pytest.mark.slow

WORKERS = 8
PER_WORKER = 400
SECONDS = 60.0


async def cli(pledge: Pledge, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "widget_server.cli",
        *args,
        "--db",
        str(pledge.database),
        cwd=ROOT,
        env={**os.environ, **pledge.env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=SECONDS)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def sqlite_integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


@dataclass
class Command:
    """One staff command run during the surge, and how far the surge had got around it."""

    args: tuple[str, ...]
    signed_before: int
    signed_after: int
    out: str
    err: str


@dataclass
class Surge:
    acknowledged: set[str] = field(default_factory=set)
    failures: list[tuple[int, str]] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)


async def staff_while_signing(server: Server, pledge: Pledge, backup: Path) -> Surge:
    """Keep signing from several connections while stats, export and backup run in turn."""
    token = form_token(server, pledge)
    surge = Surge()
    done = asyncio.Event()

    async def signer(client: httpx.AsyncClient, number: int) -> None:
        for i in range(PER_WORKER):
            if done.is_set():
                return
            email = f"alongside-w{number}-{i}@example.org"
            answer = await client.post(
                f"/embed/{pledge.slug}/sign",
                data={"name": "Busy Day", "email": email, "form_token": token},
                headers={"Accept": "application/json"},
            )
            if answer.status_code == 200 and answer.json()["status"] == "signed":
                surge.acknowledged.add(email)
            else:
                surge.failures.append((answer.status_code, answer.text[:200]))

    async def run(*args: str) -> None:
        before = len(surge.acknowledged)
        code, out, err = await cli(pledge, *args)
        assert code == 0, err
        surge.commands.append(Command(args, before, len(surge.acknowledged), out, err))

    async def staff() -> None:
        try:
            for _ in range(2000):  # until the surge is under way (at most 20 s)
                if len(surge.acknowledged) >= 100 or surge.failures:
                    break
                await asyncio.sleep(0.01)
            assert len(surge.acknowledged) >= 100, surge.failures[:3]
            for _ in range(2):
                await run("stats", pledge.slug, "--json")
                await run("export", pledge.slug)
            await run("backup", str(backup))
        finally:
            done.set()

    limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
    async with httpx.AsyncClient(base_url=server.url, timeout=20.0, limits=limits) as client:
        await asyncio.wait_for(asyncio.gather(staff(), *(signer(client, n) for n in range(WORKERS))), timeout=SECONDS)
    return surge


def test_stats_export_and_backup_run_while_the_server_writes(tmp_path: Path) -> None:
    pledge = prepare_pledge(tmp_path)
    backup = tmp_path / "copy.sqlite3"
    with serving(pledge, tmp_path) as server:
        surge = asyncio.run(staff_while_signing(server, pledge, backup))
        assert server.stop() == 0

    acknowledged = surge.acknowledged
    assert surge.failures == []  # the server's side: every signature answered "signed"
    assert [c.args[0] for c in surge.commands] == ["stats", "export", "stats", "export", "backup"]
    for command in surge.commands:
        # The command's side: no complaint at all; and signatures kept arriving while it ran.
        assert command.err == ""
        assert command.signed_after > command.signed_before
        if command.args[0] == "stats":
            assert command.signed_before <= json.loads(command.out)["total"] <= len(acknowledged)
        if command.args[0] == "export":
            rows = list(csv.DictReader(io.StringIO(command.out)))
            assert len(rows) >= command.signed_before
            assert {row["email"] for row in rows} <= acknowledged
            assert {row["partner"] for row in rows} == {"Bench Partner"}

    # The copy opens, passes SQLite's own check, and is one moment of the database: its kept
    # counts agree with its rows, and it holds everything acknowledged before it was taken.
    taken = surge.commands[-1]
    assert sqlite_integrity(backup) == "ok"
    copied_rows, problems = integrity(backup)
    assert problems == []
    assert taken.signed_before <= copied_rows <= len(acknowledged)
    assert stored_emails(backup) <= acknowledged

    assert stored_emails(pledge.database) == acknowledged
    assert integrity(pledge.database) == (len(acknowledged), [])
    assert_log_is_clean(server)
