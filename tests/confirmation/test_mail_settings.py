"""WIDGET_SMTP_URL and WIDGET_MAIL_FROM are checked at start-up, one sentence each, and no
sentence ever shows the password; the serve command refuses them in one line."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.confirmation.conftest import MAIL_FROM, SmtpServer, confirming_pledge
from tests.security.test_weak_config import one_line, serve
from widget_server import messages
from widget_server.errors import ConfigError
from widget_server.settings import Settings
from widget_server.web.app import create_app

KEY = "k" * 40


def settings(**values: str) -> Settings:
    return Settings.from_env(environ={}, secret_key=KEY, **values)


@pytest.mark.parametrize(
    "url",
    [
        "smtp://127.0.0.1:2525",
        "smtp://relay.internal",
        "smtp+starttls://user:p%40ss@mail.example.org:587",
        "smtps://user:pass@mail.example.org",
        "smtp://[::1]:25",
    ],
)
def test_good_mail_servers_are_accepted(url: str) -> None:
    assert settings(smtp_url=url, mail_from="pledge@campaign.example").mail_configured


BAD = [
    ("http://mail.example.org", "WIDGET_SMTP_URL starts with smtp://, smtp+starttls:// or smtps://"),
    ("mail.example.org:25", "WIDGET_SMTP_URL starts with smtp://"),
    ("smtp://", "WIDGET_SMTP_URL names the mail server's host"),
    ("smtps://mail.example.org:465/inbox", "WIDGET_SMTP_URL names the mail server's host"),
    ("smtp://mail.example.org:0", "WIDGET_SMTP_URL's port is a number from 1 to 65535"),
    ("smtp://mail.example.org:70000", "WIDGET_SMTP_URL's port is a number from 1 to 65535"),
    ("smtp://mail.example.org:twenty-five", "WIDGET_SMTP_URL's port is a number from 1 to 65535"),
    ("smtp://user:hunter2-secret@mail.example.org", "only over TLS: use smtp+starttls:// or smtps://"),
]


@pytest.mark.parametrize(("url", "sentence"), BAD)
def test_a_bad_mail_server_is_one_sentence_without_its_password(url: str, sentence: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(smtp_url=url, mail_from="pledge@campaign.example")
    assert sentence in caught.value.message
    assert "hunter2" not in caught.value.message


def test_the_password_is_never_quoted_back() -> None:
    with pytest.raises(ConfigError) as caught:
        settings(smtp_url="smtps://user:hunter2-secret@mail.example.org:0", mail_from="p@campaign.example")
    assert "hunter2" not in caught.value.message and "user:…@" in caught.value.message
    # Typed raw, a password may hold "/" or "@": it is still not quoted.
    with pytest.raises(ConfigError) as caught:
        settings(smtp_url="smtps://user:hun/ter@2@mail.example.org:0", mail_from="p@campaign.example")
    assert "hun" not in caught.value.message.replace("user:…@", "") and "ter" not in caught.value.message


@pytest.mark.parametrize("sender", ["pledge@campaign.example", "Keep our data safe <pledge@campaign.example>"])
def test_a_from_address_may_have_a_display_name(sender: str) -> None:
    assert settings(smtp_url="smtp://127.0.0.1:25", mail_from=sender).mail_from == sender


@pytest.mark.parametrize(
    "sender",
    [
        "Pledge",
        "a@campaign.example, b@campaign.example",
        "Pledge <pledge@campaign.example\r\nBcc: x@y.example>",
        "pledge@",
        "@campaign.example",
        "pledge@localhost",
        "Pledge <pledge@campaign.example> extra",
    ],
)
def test_a_from_that_is_not_one_address_is_refused(sender: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(smtp_url="smtp://127.0.0.1:25", mail_from=sender)
    assert caught.value.message.startswith("WIDGET_MAIL_FROM is one email address")


def test_half_a_mail_configuration_is_refused() -> None:
    for values in ({"smtp_url": "smtp://127.0.0.1:25"}, {"mail_from": "pledge@campaign.example"}):
        with pytest.raises(ConfigError, match="go together"):
            settings(**values)
    assert not settings().mail_configured


def test_serve_refuses_a_bad_mail_server_in_one_line(tmp_path: Path) -> None:
    line = one_line(
        serve(tmp_path, WIDGET_SMTP_URL="smtp://u:hunter2@mail.example.org", WIDGET_MAIL_FROM="p@x.example")
    )
    assert "WIDGET_SMTP_URL sends a user name and password only over TLS" in line and "hunter2" not in line


def test_a_server_without_mail_says_at_start_that_a_pledge_asks_for_confirmation(
    make_settings: Callable[..., Settings], smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Mail settings removed after a pledge switched confirmation on: its signers are still told to
    check their email, so staff must hear of it when the server starts."""
    with_mail = make_settings(smtp_url=smtp_server.url(), mail_from=MAIL_FROM)
    confirming_pledge(with_mail)
    without = dataclasses.replace(with_mail, smtp_url="", mail_from="")
    with caplog.at_level(logging.WARNING), TestClient(create_app(without)):
        pass
    assert messages.CONFIRM_WITHOUT_MAIL in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING), TestClient(create_app(with_mail)):
        pass
    assert messages.CONFIRM_WITHOUT_MAIL not in caplog.text
