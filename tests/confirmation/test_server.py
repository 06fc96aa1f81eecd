"""The whole path through a real `widget-server serve` and a real SMTP server on loopback: sign,
receive the email, open its link, press the button, see the count; and with the mail server
down, the email is retried and delivered once it is back, while signing never waits for it."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest

from tests.confirmation.conftest import MAIL_FROM, SLUG, Inbox, SmtpServer
from tests.conftest import Signer
from tests.server_harness import WidgetServer

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[WidgetServer]:
    started = WidgetServer.start(
        tmp_path / "data",
        WIDGET_SMTP_URL=smtp_server.url(),
        WIDGET_MAIL_FROM=MAIL_FROM,
        WIDGET_MIN_FILL_SECONDS="0",
        WIDGET_RATE_LIMIT="off",
        WIDGET_OUTBOX_FIRST_RETRY_SECONDS="0.2",
    )
    statement = tmp_path / "statement.html"
    statement.write_text("<p>We ask public services to keep personal data away from enforcement.</p>")
    started.cli(
        "pledge",
        "add",
        SLUG,
        "--title",
        "Keep our data safe",
        "--statement-file",
        str(statement),
        "--confirm-email",
        "on",
    )
    yield started
    assert started.stop() == 0
    assert started.log_errors() == []


def attempts(server: WidgetServer) -> list[int]:
    with sqlite3.connect(server.db) as conn:
        return [row[0] for row in conn.execute("SELECT attempts FROM outbox ORDER BY id")]


def wait_until(check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.05)


def test_sign_receive_the_email_press_the_button_and_count(server: WidgetServer, inbox: Inbox) -> None:
    with httpx2.Client(base_url=server.url) as client:
        signer = Signer(client)
        assert signer.sign(json=True).json() == {"status": "pending"}
        assert server.stats(SLUG)["pending"] == 1
        got = inbox.wait_for(1)[0]
        assert got.rcpt_tos == ["ana@example.org"] and got.link.startswith(server.url + "/confirm/")
        path = urlsplit(got.link).path
        assert client.get(path).status_code == 200
        assert client.get(f"/api/pledges/{SLUG}/count").json() == {"total": 0}
        confirmed = client.post(path)
        assert confirmed.status_code == 200 and "your signature now counts" in confirmed.text
        assert client.get(f"/api/pledges/{SLUG}/count").json() == {"total": 1}
        assert client.post(path).status_code == 200
    figures = server.stats(SLUG)
    assert (figures["total"], figures["pending"], figures["confirmation_rate"]) == (1, 0, 1.0)
    assert server.exported(SLUG, "ana@example.org")["name"] == "Ana Teacher"
    # Nothing of the signer reaches the log.
    assert "ana@example.org" not in server.log()
    assert "Ana Teacher" not in server.log()


def test_with_the_mail_server_down_the_email_is_retried_and_delivered_when_it_returns(
    server: WidgetServer, inbox: Inbox, smtp_server: SmtpServer
) -> None:
    smtp_server.stop()
    with httpx2.Client(base_url=server.url) as client:
        started = time.monotonic()
        assert Signer(client).sign(json=True).json() == {"status": "pending"}
        assert time.monotonic() - started < 5  # signing never waits for the mail server
    wait_until(lambda: any(n >= 2 for n in attempts(server)))  # retried, with backoff
    smtp_server.start()
    got = inbox.wait_for(1, timeout=30)[0]
    assert got.rcpt_tos == ["ana@example.org"]
    wait_until(lambda: attempts(server) == [])
    assert inbox.settle(0.5) == 1
    assert "ana@example.org" not in server.log()
