"""Several server processes against one PostgreSQL: every signature counted once, the same
address racing through two processes stored once and answered alike, an outage answered with a
sentence and recovered from without a restart, and a worker killed mid-surge losing nothing it
acknowledged."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.server_harness import fetch
from tests.system.postgres import counts_and_problems, postgres_url, prepare, proxy_to, sign, start, worker_pids

__all__ = ["postgres_url"]  # the fixture, imported for the tests below

pytestmark = pytest.mark.slow


def test_two_workers_count_every_signature_once_and_racing_duplicates_once(postgres_url: str, tmp_path: Path) -> None:
    token = prepare(postgres_url, tmp_path / "data")
    server = start(postgres_url, tmp_path, workers=2)
    try:
        assert len(worker_pids(server)) == 2
        # 60 distinct people, and 6 addresses each sent 5 times at once from different connections.
        emails = [f"person{i}@example.org" for i in range(60)] + [f"racer{i % 6}@example.org" for i in range(30)]
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda email: sign(server, token, email), emails))
    finally:
        assert server.stop() == 0
    assert all(status == 200 and body["status"] == "signed" for status, body in answers), answers
    total, rows, problems = counts_and_problems(postgres_url)
    assert (total, rows, problems) == (66, 66, [])


def test_a_database_outage_is_a_sentence_and_the_server_recovers_by_itself(postgres_url: str, tmp_path: Path) -> None:
    token = prepare(postgres_url, tmp_path / "data")
    with proxy_to(postgres_url) as proxy:
        server = start(proxy.url, tmp_path, workers=2)
        try:
            assert sign(server, token, "before@example.org")[0] == 200
            proxy.cut()
            status, body = sign(server, token, "during@example.org")
            health, _, health_body = fetch(f"{server.url}/healthz")
            refused = [sign(server, token, f"during{i}@example.org")[0] for i in range(6)]
            proxy.restore()
            deadline = time.monotonic() + 30
            while (after := sign(server, token, "after@example.org"))[0] != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            assert server.stop() == 0
    # Never "signed" while the database is away: a 503 with a sentence a person can act on.
    assert status == 503 and body.get("status") != "signed"
    assert set(refused) == {503}
    assert health == 503 and "error" in json.loads(health_body)
    assert after[0] == 200 and after[1]["status"] == "signed"
    total, rows, problems = counts_and_problems(postgres_url)
    assert total == rows and problems == []
    assert total >= 2  # before and after; a "during" one is stored only if it was acknowledged


def test_killing_one_worker_mid_surge_loses_no_acknowledged_signature(postgres_url: str, tmp_path: Path) -> None:
    token = prepare(postgres_url, tmp_path / "data")
    server = start(postgres_url, tmp_path, workers=2)
    acknowledged: list[str] = []
    try:
        victim = worker_pids(server)[0]

        def one(i: int) -> None:
            email = f"surge{i}@example.org"
            try:
                status, body = sign(server, token, email, timeout=15)
            except (OSError, http.client.HTTPException):
                return  # the connection died with the worker (mid-answer, too): not acknowledged
            if status == 200 and body.get("status") == "signed":
                acknowledged.append(email)

        with ThreadPoolExecutor(max_workers=16) as pool:
            futures = [pool.submit(one, i) for i in range(200)]
            while len(acknowledged) < 40:
                time.sleep(0.01)
            os.kill(victim, signal.SIGKILL)
            for future in futures:
                future.result()
    finally:
        server.stop()

    async_rows = counts_and_problems(postgres_url)
    total, rows, problems = async_rows
    assert problems == [] and total == rows
    assert len(acknowledged) >= 40

    import asyncio

    from widget_server.storage.engines import open_store

    async def stored() -> set[str]:
        found: set[str] = set()
        async with open_store(postgres_url) as store, store.read_table("signatures") as chunks:
            async for chunk in chunks:
                found.update(str(row["email"]) for row in chunk)
        return found

    missing = set(acknowledged) - asyncio.run(stored())
    assert missing == set()
