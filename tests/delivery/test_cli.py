"""The CLI for webhooks, the outbox and email confirmation, run as a person runs it: a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import on_db, rows
from tests.delivery.conftest import consenting
from widget_server import messages
from widget_server.settings import Settings
from widget_server.storage.store import Store


class CLI:
    def __init__(self, tmp_path: Path) -> None:
        self.data = tmp_path / "data"
        self.statement = tmp_path / "statement.html"
        self.statement.write_text("<p>Keep our data safe.</p>")
        self.env = {
            **os.environ,
            "WIDGET_DATA_DIR": str(self.data),
            "WIDGET_PUBLIC_URL": "https://widgets.example",
            "WIDGET_SECRET_KEY": "test-secret-key-of-at-least-32-bytes",
        }
        for name in ("WIDGET_DB", "WIDGET_WEBHOOK_ALLOW_LOCAL", "WIDGET_SMTP_URL", "WIDGET_MAIL_FROM"):
            self.env.pop(name, None)
        self.settings = Settings.from_env(environ={}, data_dir=self.data, secret_key=self.env["WIDGET_SECRET_KEY"])

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "widget_server.cli", *args],
            capture_output=True,
            text=True,
            env={**self.env, **env},
            timeout=60,
        )

    def ok(self, *args: str, **env: str) -> str:
        done = self(*args, **env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def refused(self, *args: str, **env: str) -> str:
        """The one line on stderr of a command that refused, with no traceback."""
        done = self(*args, **env)
        assert done.returncode == 1, done.stdout
        assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
        return done.stderr.removeprefix("widget-server: ").strip()

    def audit(self) -> list[Any]:
        return rows(self.settings, "SELECT * FROM audit_log ORDER BY id")


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    made = CLI(tmp_path)
    made.ok("pledge", "add", "data-firewall", "--title", "Keep our data safe", "--statement-file", str(made.statement))
    made.ok("partner", "add", "data-firewall", "--name", "Riverside", "--origin", "https://riverside.example")
    return made


def test_partner_webhook_prints_its_secret_once_and_audits_only_where_it_goes(cli: CLI) -> None:
    out = cli.ok("partner", "webhook", "data-firewall", "Riverside", "--url", "https://crm.example.org/hooks/s3cr3t")
    lines = out.strip().splitlines()
    assert lines[0] == messages.WEBHOOK_SET.format(name="Riverside", url="https://crm.example.org/hooks/s3cr3t")
    assert lines[1] == messages.WEBHOOK_SECRET_ONCE.format(name="Riverside")
    assert "will not be shown again" in lines[1]
    secret = lines[-1]
    assert secret.startswith("whsec_")
    assert on_db(cli.settings, lambda store: store.partner_webhook(1)) == (
        "https://crm.example.org/hooks/s3cr3t",
        secret,
    )
    [entry] = [r for r in cli.audit() if r["action"] == "webhook set"]
    assert (entry["pledge"], entry["subject"], entry["detail"]) == (
        "data-firewall",
        "Riverside",
        "https://crm.example.org",
    )
    assert entry["actor"].startswith("cli:")
    everything = json.dumps([dict(r) for r in cli.audit()])
    assert secret not in everything and "s3cr3t" not in everything
    # Set again: a new secret, and the old one no longer kept.
    again = cli.ok("partner", "webhook", "data-firewall", "Riverside", "--url", "https://crm.example.org/hooks/s3cr3t")
    assert again.strip().splitlines()[-1] != secret


def test_partner_webhook_off(cli: CLI) -> None:
    cli.ok("partner", "webhook", "data-firewall", "Riverside", "--url", "https://crm.example.org/hook")
    out = cli.ok("partner", "webhook", "data-firewall", "Riverside", "--off")
    assert out.strip() == messages.WEBHOOK_OFF.format(name="Riverside")
    assert on_db(cli.settings, lambda store: store.partner_webhook(1)) is None
    assert [r["action"] for r in cli.audit()][-1] == "webhook removed"
    assert cli.ok("partner", "webhook", "data-firewall", "Riverside", "--off").strip() == (
        messages.WEBHOOK_WAS_OFF.format(name="Riverside")
    )


def test_partner_webhook_refuses_bad_urls_in_one_line(cli: CLI) -> None:
    hook = ("partner", "webhook", "data-firewall", "Riverside", "--url")
    assert cli.refused(*hook, "http://crm.example.org/hook") == messages.WEBHOOK_URL_NOT_HTTPS
    assert cli.refused(*hook, "https://10.0.0.7/hook") == messages.WEBHOOK_URL_LOCAL
    assert cli.refused(*hook, "https://u:p@crm.example.org/") == messages.WEBHOOK_URL_CREDENTIALS
    assert cli.refused(*hook, "") == messages.WEBHOOK_URL_MISSING
    assert cli.refused("partner", "webhook", "data-firewall", "Nobody", "--url", "https://a.example") == (
        messages.NO_PARTNER_CALLED.format(slug="data-firewall", name="Nobody")
    )
    assert on_db(cli.settings, lambda store: store.partner_webhook(1)) is None
    # Allowed for a CRM inside the campaign's own network.
    cli.ok(*hook, "http://10.0.0.7:8080/hook", WIDGET_WEBHOOK_ALLOW_LOCAL="on")
    # Neither --url nor --off: argparse's usage error.
    assert cli("partner", "webhook", "data-firewall", "Riverside").returncode == 2


def _dead_message(settings: Settings) -> int:
    """A webhook message out of attempts, as the worker leaves one."""

    async def go(store: Store) -> int:
        await store.set_partner_webhook(1, "https://crm.example.org/hook", "whsec_" + "A" * 44)
        await store.write_signatures([consenting(1, 1, "ana@example.org", 1_790_000_000.0)])
        [message] = await store.outbox_messages()
        await store.outbox_failed(message.id, messages.DELIVERY_STATUS.format(status=500), None)
        return message.id

    return on_db(settings, go)


def test_outbox_list_retry_and_discard(cli: CLI) -> None:
    assert cli.ok("outbox", "list").strip() == messages.OUTBOX_EMPTY
    message_id = _dead_message(cli.settings)
    listed = cli.ok("outbox", "list", "--dead")
    assert f"{message_id}" in listed and "webhook" in listed and "Riverside" in listed and "dead" in listed
    assert "the webhook answered HTTP 500" in listed
    assert "ana@example.org" not in listed
    [shown] = json.loads(cli.ok("outbox", "list", "--json"))
    assert shown == {
        "id": message_id,
        "kind": "webhook",
        "partner": "Riverside",
        "pledge": "data-firewall",
        "created_at": shown["created_at"],
        "attempts": 1,
        "next_attempt_at": None,
        "dead": True,
        "last_error": "the webhook answered HTTP 500",
    }
    assert cli.ok("outbox", "retry", str(message_id)).strip() == messages.outbox_retried(1)
    [retried] = json.loads(cli.ok("outbox", "list", "--json"))
    assert (retried["dead"], retried["attempts"]) == (False, 0)
    assert cli.ok("outbox", "list", "--dead").strip() == messages.OUTBOX_NO_DEAD
    assert cli.refused("outbox", "retry", str(message_id)) == messages.OUTBOX_NOT_DEAD.format(id=message_id)
    assert cli.refused("outbox", "retry", "--all-dead") == messages.OUTBOX_NONE_DEAD
    assert cli.ok("outbox", "discard", str(message_id)).strip() == messages.OUTBOX_DISCARDED.format(id=message_id)
    assert cli.refused("outbox", "discard", str(message_id)) == messages.OUTBOX_NO_MESSAGE.format(id=message_id)
    assert cli.ok("outbox", "list").strip() == messages.OUTBOX_EMPTY
    audited = [(r["action"], r["subject"]) for r in cli.audit() if r["action"].startswith("outbox")]
    assert audited == [("outbox retried", f"message {message_id}"), ("outbox discarded", f"message {message_id}")]


def test_outbox_retry_all_dead(cli: CLI) -> None:
    _dead_message(cli.settings)
    assert cli.ok("outbox", "retry", "--all-dead").strip() == messages.outbox_retried(1)
    assert [r["subject"] for r in cli.audit() if r["action"] == "outbox retried"] == ["every dead message"]


MAIL = {"WIDGET_SMTP_URL": "smtp://127.0.0.1:2525", "WIDGET_MAIL_FROM": "Pledge <pledge@campaign.example>"}


def test_confirm_email_needs_mail_settings(cli: CLI) -> None:
    add = ("pledge", "add", "confirmed", "--title", "Confirmed", "--statement-file", str(cli.statement))
    assert cli.refused(*add, "--confirm-email", "on") == messages.CONFIRM_NEEDS_MAIL
    assert on_db(cli.settings, lambda store: store.pledge_by_slug("confirmed")) is None
    cli.ok(*add, "--confirm-email", "on", **MAIL)
    pledge = on_db(cli.settings, lambda store: store.pledge_by_slug("confirmed"))
    assert pledge is not None and pledge.confirm_email

    assert cli.refused("pledge", "edit", "data-firewall", "--confirm-email", "on") == messages.CONFIRM_NEEDS_MAIL
    assert "email confirmation changed" in cli.ok("pledge", "edit", "data-firewall", "--confirm-email", "on", **MAIL)
    edited = on_db(cli.settings, lambda store: store.pledge_by_slug("data-firewall"))
    assert edited is not None and edited.confirm_email
    # Switching it off needs no mail server.
    cli.ok("pledge", "edit", "data-firewall", "--confirm-email", "off")
    off = on_db(cli.settings, lambda store: store.pledge_by_slug("data-firewall"))
    assert off is not None and not off.confirm_email
    assert [r["detail"] for r in cli.audit() if r["action"] == "pledge edited"] == [
        "email confirmation",
        "email confirmation",
    ]
