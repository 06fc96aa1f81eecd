"""The outbox across real server processes: a `kill -9` after the commit and before the send loses
nothing and sends once after the restart; two processes on one PostgreSQL never both deliver a message."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import httpx2
import pytest

from tests.conftest import PARTNER_ORIGIN, Signer
from tests.delivery.conftest import Receiver, verified, wait_until
from tests.server_harness import WidgetServer, fetch
from tests.system.postgres import FORM_TOKEN, ORIGIN, SLUG, postgres_url, prepare, settings_for, start
from widget_server.services import webhooks
from widget_server.storage.engines import open_store

__all__ = ["postgres_url"]  # the fixture, for the PostgreSQL test below

pytestmark = pytest.mark.slow


def outbox_rows(database: Path) -> int:
    conn = sqlite3.connect(database)
    try:
        return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])
    finally:
        conn.close()


def test_kill_9_after_the_commit_and_before_the_send_delivers_once_after_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    server = WidgetServer.start(tmp_path / "data", WIDGET_MIN_FILL_SECONDS="0", WIDGET_WEBHOOK_ALLOW_LOCAL="on")
    try:
        statement = tmp_path / "statement.html"
        statement.write_text("<p>We ask.</p>")
        server.cli(
            "pledge", "add", "data-firewall", "--title", "Keep our data safe", "--statement-file", str(statement)
        )
        token = json.loads(
            server.cli("partner", "add", "data-firewall", "--name", "Riverside", "--origin", PARTNER_ORIGIN, "--json")
        )["token"]
        secret = server.cli("partner", "webhook", "data-firewall", "Riverside", "--url", receiver.url()).split()[-1]
        # The receiver takes the request and never answers: the server is killed mid-send, its message
        # committed and leased, and not marked sent.
        receiver.hang()
        with httpx2.Client(base_url=server.url) as client:
            answer = Signer(client, token=token, parent=PARTNER_ORIGIN).sign(json=True, opt_in_partner="yes")
        assert answer.json()["status"] == "signed"
        [first] = receiver.wait_for(1, answered=False)
        os.kill(server.process.pid, signal.SIGKILL)
        assert server.process.wait(10) == -signal.SIGKILL
    finally:
        server.stop()
    assert outbox_rows(server.db) == 1
    receiver.answer(200)

    again = WidgetServer.start(tmp_path / "data", WIDGET_MIN_FILL_SECONDS="0", WIDGET_WEBHOOK_ALLOW_LOCAL="on")
    try:
        # Sent again once the dead process's lease runs out (the send's timeout and a margin).
        [delivered] = receiver.wait_for(1, deadline=60)
        wait_until(lambda: outbox_rows(again.db) == 0, what="the outbox emptying")
    finally:
        assert again.stop() == 0
    assert delivered.webhook_id == first.webhook_id  # the same id: a receiver drops a duplicate by it
    assert len(receiver.answered()) == 1
    assert len(receiver.all()) == 2
    assert verified(secret, delivered)["data"]["person"]["email_addresses"][0]["address"] == "ana@example.org"
    for log in (server.log(), again.log()):
        assert "ana@example.org" not in log and "Ana Teacher" not in log


def _sign_consenting(base_url: str, token: str, email: str) -> int:
    query = urlencode({"token": token, "parent": ORIGIN})
    status, _, page = fetch(f"{base_url}/embed/{SLUG}?{query}", timeout=15)
    assert status == 200
    match = FORM_TOKEN.search(page.decode())
    assert match
    body = urlencode({"name": "Many Signers", "email": email, "form_token": match.group(1), "opt_in_partner": "yes"})
    status, _, _ = fetch(
        f"{base_url}/embed/{SLUG}/sign",
        data=body.encode(),
        timeout=15,
        headers={"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"},
    )
    return status


def test_two_processes_on_postgresql_deliver_each_message_once(
    postgres_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    token = prepare(postgres_url, tmp_path / "data")
    settings = settings_for(postgres_url, tmp_path / "data").with_overrides(webhook_allow_local="on")

    async def hook() -> str:
        async with open_store(postgres_url) as store:
            return (await webhooks.set_webhook(store, settings, SLUG, "Riverside", receiver.url())).secret

    secret = asyncio.run(hook())
    receiver.delay = 0.05  # so both processes' workers are busy at once
    server = start(postgres_url, tmp_path, workers=2, WIDGET_WEBHOOK_ALLOW_LOCAL="on")
    count = 120
    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(
                pool.map(lambda i: _sign_consenting(server.url, token, f"many{i}@example.org"), range(count))
            )
        assert statuses == [200] * count
        receiver.wait_for(count, deadline=60)

        async def queued() -> int:
            async with open_store(postgres_url) as store:
                return len(await store.outbox_messages(limit=10_000))

        wait_until(lambda: asyncio.run(queued()) == 0, deadline=60, what="the outbox emptying")
    finally:
        assert server.stop() == 0  # sends in flight finish before the processes exit
    delivered = receiver.all()
    ids = [r.webhook_id for r in delivered]
    assert len(ids) == count and len(set(ids)) == count, "a message was delivered twice"
    emails = {verified(secret, r)["data"]["person"]["email_addresses"][0]["address"] for r in delivered}
    assert emails == {f"many{i}@example.org" for i in range(count)}
