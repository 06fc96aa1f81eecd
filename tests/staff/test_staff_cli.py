"""The staff commands: accounts, pledge edit and close, a partner's report link; each audited
as the operating-system user, as are the older commands that change something."""

from __future__ import annotations

import getpass

import pytest

from tests.conftest import make_partner, make_pledge, on_db, rows
from widget_server.cli import main
from widget_server.core.models import Pledge
from widget_server.security import passwords
from widget_server.settings import Settings
from widget_server.storage.store import StaffUser


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    monkeypatch.setenv("WIDGET_DB", str(settings.database))
    monkeypatch.setenv("WIDGET_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("WIDGET_PUBLIC_URL", "http://testserver")
    monkeypatch.setenv("WIDGET_DATA_DIR", str(settings.data_dir))
    return settings


def user(settings: Settings, email: str) -> StaffUser:
    found = on_db(settings, lambda store: store.staff_user_by_email(email))
    assert found is not None
    return found


def pledge(settings: Settings) -> Pledge:
    found = on_db(settings, lambda store: store.pledge_by_slug("data-firewall"))
    assert found is not None
    return found


def actions(settings: Settings) -> list[tuple[str, str, str, str]]:
    return [(r["actor"], r["action"], r["pledge"], r["subject"]) for r in rows(settings, "SELECT * FROM audit_log")]


def test_user_commands(cli_env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WIDGET_PASSWORD", "a long enough password")
    assert main(["user", "add", "Ana@Campaign.example", "--role", "owner"]) == 0
    assert main(["user", "add", "bo@campaign.example"]) == 0
    assert main(["user", "add", "bo@campaign.example"]) == 1
    assert "already has a staff account" in capsys.readouterr().err
    assert main(["user", "list"]) == 0
    listed = capsys.readouterr().out
    assert "owner      ana@campaign.example" in listed and "viewer     bo@campaign.example" in listed
    ana = user(cli_env, "ana@campaign.example")
    assert ana.password_hash.startswith("scrypt$131072$8$1$")
    assert passwords.verify_password("a long enough password", ana.password_hash)
    monkeypatch.setenv("WIDGET_PASSWORD", "another long password")
    assert main(["user", "password", "ana@campaign.example"]) == 0
    changed = user(cli_env, "ana@campaign.example")
    assert changed.session_epoch == 2 and passwords.verify_password("another long password", changed.password_hash)
    assert main(["user", "remove", "ana@campaign.example"]) == 1  # the last owner stays
    assert main(["user", "remove", "bo@campaign.example"]) == 0
    me = f"cli:{getpass.getuser()}"
    assert [a for a in actions(cli_env) if a[0] == me] == [
        (me, "user added", "", "ana@campaign.example"),
        (me, "user added", "", "bo@campaign.example"),
        (me, "password changed", "", "ana@campaign.example"),
        (me, "user removed", "", "bo@campaign.example"),
    ]


def test_a_short_password_or_none_at_all_is_refused(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WIDGET_PASSWORD", "short")
    assert main(["user", "add", "ana@campaign.example"]) == 1
    assert "at least 10 characters" in capsys.readouterr().err
    monkeypatch.delenv("WIDGET_PASSWORD")
    assert main(["user", "add", "ana@campaign.example"]) == 1  # stdin is not a terminal under pytest
    assert "WIDGET_PASSWORD" in capsys.readouterr().err


def test_pledge_edit_close_and_partner_link(cli_env: Settings, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    make_pledge(cli_env)
    make_partner(cli_env)
    statement = tmp_path / "s.html"
    statement.write_text("<p>New words</p><script>x</script>", encoding="utf-8")
    assert (
        main(
            [
                "pledge",
                "edit",
                "data-firewall",
                "--goal",
                "5000",
                "--statement-file",
                str(statement),
                "--fields",
                "occupation",
            ]
        )
        == 0
    )
    saved = pledge(cli_env)
    assert (saved.goal, saved.statement_html, saved.optional_fields) == (5000, "<p>New words</p>x", ("occupation",))
    assert main(["pledge", "close", "data-firewall"]) == 0
    assert pledge(cli_env).closed
    assert main(["pledge", "edit", "data-firewall", "--open"]) == 0
    assert not pledge(cli_env).closed
    assert main(["pledge", "edit", "data-firewall"]) == 1
    capsys.readouterr()
    assert main(["partner", "link", "data-firewall", "Riverside"]) == 0
    assert capsys.readouterr().out.startswith("http://testserver/partner-report/")
    logged = [(a, p) for _, a, p, _ in actions(cli_env)]
    assert logged == [
        ("pledge edited", "data-firewall"),
        ("pledge closed", "data-firewall"),
        ("pledge opened", "data-firewall"),
        ("partner link shown", "data-firewall"),
    ]


def test_older_commands_that_change_something_are_audited(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    make_pledge(cli_env)
    assert main(["partner", "add", "data-firewall", "--name", "Hill", "--origin", "https://hill.example"]) == 0
    assert main(["partner", "revoke", "data-firewall", "Hill"]) == 0
    assert main(["export", "data-firewall"]) == 0
    assert main(["person", "erase", "Ana@Example.org"]) == 0
    assert main(["stats", "data-firewall"]) == 0  # reads only: not logged
    me = f"cli:{getpass.getuser()}"
    assert actions(cli_env) == [
        (me, "partner created", "data-firewall", "Hill"),
        (me, "partner revoked", "data-firewall", "Hill"),
        (me, "export downloaded", "data-firewall", ""),
        (me, "person erased", "", "a…@example.org"),
    ]
