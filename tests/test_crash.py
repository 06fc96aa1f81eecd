"""Surges without losses: the real server, killed mid-load, keeps every signature it acknowledged.

A supporter who was told "signed" must be counted, whatever happens to the process next. These
tests run `widget-server serve` in a subprocess, sign over 127.0.0.1 from many connections at
once, then `kill -9` it (or SIGTERM it) in the middle of the load and read the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import httpx2
import pytest

from benchmarks.harness import PARTNER_ORIGIN, Pledge, Server, integrity, prepare_pledge, start_server
from tests.conftest import Signer

pytestmark = pytest.mark.slow

WORKERS = 16
PER_WORKER = 150  # bounds every load: at most WORKERS * PER_WORKER requests
LOAD_SECONDS = 30.0  # and at most this long


@dataclass
class Load:
    """What the clients saw: every email sent, the ones answered "signed", the ones unanswered."""

    sent: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)
    unanswered: set[str] = field(default_factory=set)
    other_answers: list[tuple[int, str]] = field(default_factory=list)
    answered_after_signal: int = 0


def serve(pledge: Pledge, log_dir: Path) -> Server:
    command = ["-m", "widget_server.cli", "serve", "--db", str(pledge.database)]
    return start_server("server", command, pledge.env, log_dir)


@contextlib.contextmanager
def serving(pledge: Pledge, log_dir: Path) -> Iterator[Server]:
    """The real server for the length of a block; never left running, whatever the block does."""
    server = serve(pledge, log_dir)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


def form_token(server: Server, pledge: Pledge) -> str:
    with httpx2.Client(base_url=server.url) as client:
        return Signer(client, slug=pledge.slug, token=pledge.partner_token, parent=PARTNER_ORIGIN).form()


async def sign_until(
    server: Server, pledge: Pledge, label: str, signal_after: int, send_signal: Callable[[], None]
) -> Load:
    """Sign from WORKERS connections; after `signal_after` acknowledgements call `send_signal`.

    Each worker stops at its first request without an answer (the server is gone), so the
    load ends on its own once the server stops; it is bounded in count and time regardless.
    """
    load = Load()
    token = form_token(server, pledge)
    signalled: list[float] = []
    limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)

    async def worker(client: httpx.AsyncClient, number: int) -> None:
        for i in range(PER_WORKER):
            email = f"{label}-w{number}-{i}@example.org"
            load.sent.add(email)
            try:
                answer = await client.post(
                    f"/embed/{pledge.slug}/sign",
                    data={"name": "Crash Tester", "email": email, "form_token": token},
                    headers={"Accept": "application/json"},
                )
            except httpx.TransportError:
                load.unanswered.add(email)
                return
            if signalled:
                load.answered_after_signal += 1
            if answer.status_code == 200 and answer.json().get("status") == "signed":
                load.acknowledged.add(email)
            else:
                load.other_answers.append((answer.status_code, answer.text[:200]))
            if len(load.acknowledged) >= signal_after and not signalled:
                signalled.append(time.monotonic())
                send_signal()

    async with httpx.AsyncClient(base_url=server.url, timeout=20.0, limits=limits) as client:
        await asyncio.wait_for(asyncio.gather(*(worker(client, n) for n in range(WORKERS))), timeout=LOAD_SECONDS)
    assert signalled, "the load ended before the signal was due"
    return load


def stored_emails(database: Path | str) -> set[str]:
    conn = sqlite3.connect(database)
    try:
        return {email for (email,) in conn.execute("SELECT email FROM signatures")}
    finally:
        conn.close()


def assert_nothing_acknowledged_was_lost(pledge: Pledge, server: Server, loads: list[Load]) -> None:
    """Every "signed" answer is a row; every row was sent by us; counts equal rows, also as served."""
    stored = stored_emails(pledge.database)
    acknowledged = set().union(*(load.acknowledged for load in loads))
    sent = set().union(*(load.sent for load in loads))
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged signatures are missing"
    assert stored <= sent
    rows, problems = integrity(pledge.database)
    assert problems == []
    assert rows == len(stored)
    answer = httpx.get(f"{server.url}/api/pledges/{pledge.slug}/count", params={"token": pledge.partner_token})
    assert answer.json() == {"total": rows, "partner": rows}


def assert_log_is_clean(server: Server) -> None:
    """JSON lines only, no signer's email address, no failure to write."""
    text = server.log_path.read_text()
    for line in text.splitlines():
        json.loads(line)
    assert "@example.org" not in text
    assert "could not write a signature" not in text
    assert "database is locked" not in text


def test_kill_9_in_the_middle_of_a_surge_loses_no_acknowledged_signature(tmp_path: Path) -> None:
    pledge = prepare_pledge(tmp_path)
    loads: list[Load] = []
    for round_number, kill_after in enumerate((60, 150, 250)):
        with serving(pledge, tmp_path) as server:
            # Restarted on what the last kill left behind (a WAL that was never checkpointed).
            assert_nothing_acknowledged_was_lost(pledge, server, loads)

            def kill(server: Server = server) -> None:
                os.kill(server.process.pid, signal.SIGKILL)

            load = asyncio.run(sign_until(server, pledge, f"crash{round_number}", kill_after, kill))
            assert server.process.wait(10) == -signal.SIGKILL
        assert load.other_answers == []
        assert len(load.acknowledged) >= kill_after
        # Killed mid-load: requests were on their way and never answered.
        assert load.unanswered
        loads.append(load)

    with serving(pledge, tmp_path) as server:
        assert_nothing_acknowledged_was_lost(pledge, server, loads)
        assert server.stop() == 0
    assert_log_is_clean(server)


def test_sigterm_answers_requests_in_flight_commits_and_exits_0(tmp_path: Path) -> None:
    pledge = prepare_pledge(tmp_path)
    with serving(pledge, tmp_path) as server:

        def terminate() -> None:
            os.kill(server.process.pid, signal.SIGTERM)

        load = asyncio.run(sign_until(server, pledge, "term", 100, terminate))
        assert server.process.wait(30) == 0
    stored = stored_emails(pledge.database)
    # Every request the server took in was answered, and answered "signed".
    assert load.other_answers == []
    assert load.answered_after_signal > 0
    assert load.acknowledged <= stored
    # A request without an answer never reached the server: it stopped accepting first.
    assert not (load.unanswered & stored)
    assert stored == load.acknowledged
    assert integrity(pledge.database) == (len(stored), [])
    assert_log_is_clean(server)


def test_a_supporter_hanging_up_mid_post_is_no_error_and_stores_nothing(tmp_path: Path) -> None:
    """Phones lose signal mid-post all through a surge: that must not fill the log with errors."""
    pledge = prepare_pledge(tmp_path)
    with serving(pledge, tmp_path) as server:
        body = f"name=Gone&email=gone%40example.org&form_token={form_token(server, pledge)}".encode()
        head = (
            f"POST /embed/{pledge.slug}/sign HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
                connection.sendall(head + body[:10])  # and never the rest
        # A whole signature after them: the server has read and settled the three before it.
        params = {"token": pledge.partner_token}
        last = httpx.post(
            f"{server.url}/embed/{pledge.slug}/sign",
            data={"name": "Stayed", "email": "stayed@example.org", "form_token": form_token(server, pledge)},
            headers={"Accept": "application/json"},
        )
        assert last.json()["status"] == "signed"
        assert httpx.get(f"{server.url}/api/pledges/{pledge.slug}/count", params=params).json()["total"] == 1
        assert server.stop() == 0
    assert stored_emails(pledge.database) == {"stayed@example.org"}
    assert server.log_errors() == []
    assert server.log_path.read_text().count('"status": 499') == 3
    assert_log_is_clean(server)
