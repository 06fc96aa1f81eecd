"""The `widget-server` command, run as a person runs it: a real process, real files."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Signer
from widget_server.settings import Settings


class CLI:
    def __init__(self, tmp_path: Path) -> None:
        self.data = tmp_path / "data"
        self.statement = tmp_path / "statement.html"
        self.statement.write_text("<p>Keep our data <em>safe</em>.</p><script>alert(1)</script>")
        self.env = {
            **os.environ,
            "WIDGET_DATA_DIR": str(self.data),
            "WIDGET_PUBLIC_URL": "https://widgets.example",
        }
        self.env.pop("WIDGET_DB", None)
        self.env.pop("WIDGET_SECRET_KEY", None)

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "widget_server.cli", *args],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=60,
        )

    def ok(self, *args: str) -> str:
        done = self(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def add_pledge(self, slug: str = "data-firewall") -> None:
        self.ok("pledge", "add", slug, "--title", "Keep our data safe", "--statement-file", str(self.statement))


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path)


def test_partner_add_prints_id_token_and_a_paste_ready_snippet(cli: CLI) -> None:
    cli.add_pledge()
    out = json.loads(
        cli.ok(
            "partner",
            "add",
            "data-firewall",
            "--name",
            "Riverside",
            "--origin",
            "https://Riverside.example/",
            "--origin",
            "http://localhost:8001",
            "--json",
        )
    )
    assert out["id"] == 1
    assert out["origins"] == ["https://riverside.example", "http://localhost:8001"]
    assert out["token"] and out["token"] in out["snippet"]
    assert '<script async src="https://widgets.example/widget.js"></script>' in out["snippet"]
    assert 'data-pledge="data-firewall"' in out["snippet"]
    assert 'data-kind="counter"' in out["counter_snippet"]
    assert out["iframe_snippet"].startswith('<iframe src="https://widgets.example/embed/data-firewall?token=')


def test_first_use_creates_the_data_dir_and_a_private_secret_key(cli: CLI) -> None:
    cli.add_pledge()
    assert (cli.data / "widget.sqlite3").exists()
    add = ("partner", "add", "data-firewall", "--origin", "https://a.example", "--json")
    token = json.loads(cli.ok(*add, "--name", "A"))["token"]
    key = cli.data / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_text().strip()) >= 40
    # The same key signs next time, so tokens already handed out stay valid.
    again = json.loads(cli.ok(*add, "--name", "B"))["token"]
    settings = Settings.from_env(environ={"WIDGET_DATA_DIR": str(cli.data)})
    from widget_server.security.tokens import Tokens

    assert Tokens(settings.signing_keys()).read_partner_token(token).partner_id == 1
    assert Tokens(settings.signing_keys()).read_partner_token(again).partner_id == 2


def test_db_flag_and_widget_db_variable_choose_the_database(cli: CLI, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.sqlite3"
    cli.ok("pledge", "add", "p1", "--title", "T", "--statement-file", str(cli.statement), "--db", str(elsewhere))
    assert elsewhere.exists()
    assert json.loads(cli("stats", "p1", "--json", env={"WIDGET_DB": str(elsewhere)}).stdout)["total"] == 0
    assert cli("stats", "p1").returncode == 1  # not in the default database


def test_rotate_and_revoke(cli: CLI) -> None:
    cli.add_pledge()
    first = json.loads(
        cli.ok("partner", "add", "data-firewall", "--name", "Riverside", "--origin", "https://r.example", "--json")
    )
    rotated = json.loads(cli.ok("partner", "rotate", "data-firewall", "Riverside", "--json"))
    assert rotated["token"] != first["token"]
    assert rotated["token_version"] == 2
    assert "Revoked 'Riverside'" in cli.ok("partner", "revoke", "data-firewall", "Riverside")
    stats = json.loads(cli.ok("stats", "data-firewall", "--json"))
    assert stats["partners"][0]["revoked"] is True


def test_stats_and_export_after_real_signatures(cli: CLI, make_client, clock) -> None:
    cli.add_pledge()
    creds = json.loads(
        cli.ok("partner", "add", "data-firewall", "--name", "Riverside", "--origin", "https://r.example", "--json")
    )
    settings = Settings.from_env(environ={"WIDGET_DATA_DIR": str(cli.data)}, cache_seconds=0.0)
    client = make_client(settings)
    signer = Signer(client, clock, token=creds["token"], query={"source": "newsletter"})
    signer.sign(name='=HYPERLINK("http://x")', email="a@example.org", occupation="Nurse")
    Signer(client, clock).sign(name='Bo, "the" Builder', email="b@example.org", organisation="Bo & Co")

    stats = json.loads(cli.ok("stats", "data-firewall", "--json"))
    assert stats["total"] == 2
    assert stats["direct"] == 1
    assert stats["partners"] == [
        {
            "name": "Riverside",
            "count": 1,
            "revoked": False,
            "last_signed_on": stats["days"][0]["day"],
            # Confirmation is off for this pledge: nothing waits, and no rate is made up.
            "pending": 0,
            "confirmation_rate": None,
        }
    ]
    assert (stats["confirm_email"], stats["pending"], stats["confirmation_rate"]) == (False, 0, None)

    exported = list(csv.DictReader(io.StringIO(cli.ok("export", "data-firewall"))))
    assert [row["email"] for row in exported] == ["a@example.org", "b@example.org"]
    first, second = exported
    assert first["name"] == '\'=HYPERLINK("http://x")'  # neutralised for spreadsheets
    assert (first["partner"], first["source"], first["occupation"]) == ("Riverside", "newsletter", "Nurse")
    assert (second["name"], second["organisation"], second["partner"]) == ('Bo, "the" Builder', "Bo & Co", "")
    assert first["created_at"].endswith("Z") and "T" in first["created_at"]
    for column in ("email", "name", "occupation", "organisation", "partner", "source", "created_at"):
        assert column in first


def run_error(cli: CLI, *args: str, env: dict[str, str] | None = None) -> str:
    done = cli(*args, env=env)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_cli_error_paths_are_one_clear_line(cli: CLI, tmp_path: Path) -> None:
    cli.add_pledge()
    cli.ok("partner", "add", "data-firewall", "--name", "Riverside", "--origin", "https://r.example")
    cases = [
        (("stats", "nope"), "There is no pledge called 'nope'."),
        (("export", "nope"), "There is no pledge called 'nope'."),
        (("partner", "add", "nope", "--name", "X", "--origin", "https://x.example"), "no pledge called 'nope'"),
        (("partner", "add", "data-firewall", "--name", "X", "--origin", "not a url"), "An origin looks like"),
        (("partner", "add", "data-firewall", "--name", "X", "--origin", "https://x.example/path"), "no path"),
        (("partner", "add", "data-firewall", "--name", "X"), "Give at least one --origin"),
        (("partner", "add", "data-firewall", "--name", "Riverside", "--origin", "https://r.example"), "already has"),
        (("partner", "rotate", "data-firewall", "Nobody"), "has no partner called 'Nobody'"),
        (("partner", "revoke", "data-firewall", "Nobody"), "has no partner called 'Nobody'"),
        (("pledge", "add", "data-firewall", "--title", "T", "--statement-file", str(cli.statement)), "already exists"),
        (
            ("pledge", "add", "new", "--title", "T", "--statement-file", str(tmp_path / "missing.html")),
            "Cannot read the statement file",
        ),
        (("pledge", "add", "Bad Slug!", "--title", "T", "--statement-file", str(cli.statement)), "A slug is"),
        (("pledge", "add", "g", "--title", "T", "--statement-file", str(cli.statement), "--goal", "0"), "goal"),
        (("pledge", "add", "g", "--title", "T", "--statement-file", str(cli.statement), "--goal", "9" * 30), "goal"),
        (("backup", str(cli.statement)), "already exists"),
        (("backup", str(tmp_path / "no" / "such" / "dir.sqlite3")), "does not exist"),
    ]
    for args, expected in cases:
        assert expected in run_error(cli, *args), args


def test_a_database_path_that_is_not_a_database_is_one_line(cli: CLI) -> None:
    line = run_error(cli, "stats", "x", "--db", str(cli.statement))
    assert "not a usable widget database" in line
    assert "not a usable widget database" in run_error(cli, "serve", "--port", "1", "--db", str(cli.statement))


def test_export_into_a_pipe_that_closes_early_is_quiet(cli: CLI) -> None:
    """`widget-server export SLUG | head -1` stops cleanly: no traceback, no error line."""
    import sqlite3

    cli.add_pledge()
    conn = sqlite3.connect(cli.data / "widget.sqlite3")
    conn.executemany(
        "INSERT INTO signatures (pledge_id, email, name, created_at) VALUES (1, ?, 'A Long Name To Fill Pipes', 'now')",
        [(f"person-{i}@example.org",) for i in range(20_000)],
    )
    conn.commit()
    conn.close()
    done = subprocess.run(
        f"{sys.executable} -m widget_server.cli export data-firewall | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        env=cli.env,
        timeout=60,
    )
    assert done.stdout.startswith("created_at,email,name")
    assert done.stderr == ""


def test_bad_settings_are_one_line(cli: CLI) -> None:
    cli.add_pledge()
    assert "rate limit looks like" in run_error(cli, "serve", "--port", "1", env={"WIDGET_RATE_LIMIT": "lots"})
    assert "must be a number" in run_error(cli, "stats", "data-firewall", env={"WIDGET_CACHE_SECONDS": "soon"})
    assert "WIDGET_TRUSTED_PROXIES" in run_error(cli, "serve", "--port", "1", env={"WIDGET_TRUSTED_PROXIES": "notanip"})
    assert "WIDGET_DIRECT_FRAME_ORIGINS" in run_error(
        cli, "serve", "--port", "1", env={"WIDGET_DIRECT_FRAME_ORIGINS": "https://*"}
    )


def test_an_empty_secret_key_file_is_refused_not_used(cli: CLI) -> None:
    """An empty key would sign tokens anyone could forge."""
    cli.add_pledge()
    (cli.data / "secret.key").write_text("\n")
    line = run_error(cli, "partner", "add", "data-firewall", "--name", "A", "--origin", "https://a.example")
    assert "holds no usable key" in line
    assert "holds no usable key" in run_error(cli, "serve", "--port", "1")


def test_backup_is_a_consistent_openable_copy(cli: CLI, tmp_path: Path) -> None:
    cli.add_pledge()
    dest = tmp_path / "backup.sqlite3"
    assert "Backed up" in cli.ok("backup", str(dest))
    assert json.loads(cli.ok("stats", "data-firewall", "--json", "--db", str(dest)))["pledge"] == "data-firewall"


def test_organisation_moderation_and_person_requests(cli: CLI, make_client, clock) -> None:
    cli.add_pledge()
    settings = Settings.from_env(environ={"WIDGET_DATA_DIR": str(cli.data)}, cache_seconds=0.0)
    client = make_client(settings)
    Signer(client, clock).sign(email="ana@example.org", organisation="Hill School")
    Signer(client, clock).sign(email="bo@example.org", organisation="Bo & Co")

    listed = json.loads(cli.ok("orgs", "list", "data-firewall", "--status", "pending", "--json"))
    assert [o["name"] for o in listed] == ["Bo & Co", "Hill School"]
    assert "now shown in the public list" in cli.ok("orgs", "approve", "data-firewall", "hill school")
    assert "kept out of the public list" in cli.ok("orgs", "hide", "data-firewall", "Bo & Co")
    assert "  approved       1  Hill School" in cli.ok("orgs", "list", "data-firewall")
    assert "has signed" in run_error(cli, "orgs", "approve", "data-firewall", "Nobody")

    found = json.loads(cli.ok("person", "export", " ANA@Example.org"))
    assert found["email"] == "ana@example.org"
    assert [(s["pledge"], s["organisation"]) for s in found["signatures"]] == [("data-firewall", "Hill School")]
    assert "Erased 1 signature;" in cli.ok("person", "erase", "ana@example.org")
    assert json.loads(cli.ok("person", "export", "ana@example.org"))["signatures"] == []
    assert json.loads(cli.ok("stats", "data-firewall", "--json"))["total"] == 1
    assert "Erased 0 signatures" in cli.ok("person", "erase", "ana@example.org")
    assert "is not an email address" in run_error(cli, "person", "erase", "nobody")
