"""SECURITY.md, threat 9: weak configuration. A key too short to resist guessing, durations and
sizes that are infinite, not numbers or negative, a public URL that is not http(s), a port the
system would quietly replace and an empty database path each stop `widget-server serve` at
start-up, in one line, before anything is served."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server_harness import free_port
from widget_server.errors import ConfigError
from widget_server.settings import MIN_KEY_BYTES, Settings

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "k" * MIN_KEY_BYTES
# A server that starts in spite of its configuration would run until killed: this long.
START_BOUND_SECONDS = 30


def widget_server(tmp_path: Path, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    """`widget-server ARGS` with a fresh data folder and these WIDGET_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIDGET_")}
    env.update({"WIDGET_DATA_DIR": str(tmp_path / "data"), "WIDGET_SECRET_KEY": GOOD_KEY, **environ})
    try:
        return subprocess.run(
            [sys.executable, "-m", "widget_server.cli", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=START_BOUND_SECONDS,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"widget-server {' '.join(args)} started with {environ} instead of refusing it")


def serve(tmp_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    return widget_server(tmp_path, "serve", "--port", str(free_port()), **environ)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


WEAK = [
    ({"WIDGET_SECRET_KEY": "x"}, "WIDGET_SECRET_KEY holds a key of 1 byte;"),
    ({"WIDGET_SECRET_KEY": "k" * (MIN_KEY_BYTES - 1)}, f"at least {MIN_KEY_BYTES} bytes"),
    ({"WIDGET_SECRET_KEY_FALLBACKS": f"{GOOD_KEY}, old"}, "WIDGET_SECRET_KEY_FALLBACKS holds a key of 3 bytes"),
    ({"WIDGET_CACHE_SECONDS": "inf"}, "WIDGET_CACHE_SECONDS must be a number from 0 to 3,600, not inf."),
    ({"WIDGET_CACHE_SECONDS": "nan"}, "WIDGET_CACHE_SECONDS must be a number from 0 to 3,600, not nan."),
    ({"WIDGET_CACHE_SECONDS": "-1"}, "WIDGET_CACHE_SECONDS must be a number from 0"),
    ({"WIDGET_CACHE_SECONDS": "1e9"}, "WIDGET_CACHE_SECONDS must be a number from 0"),
    ({"WIDGET_FORM_TOKEN_HOURS": "inf"}, "WIDGET_FORM_TOKEN_HOURS must be a number"),
    ({"WIDGET_FORM_TOKEN_HOURS": "0"}, "WIDGET_FORM_TOKEN_HOURS must be a number"),
    ({"WIDGET_MIN_FILL_SECONDS": "-2"}, "WIDGET_MIN_FILL_SECONDS must be a number"),
    ({"WIDGET_MIN_FILL_SECONDS": "600", "WIDGET_FORM_TOKEN_HOURS": "0.1"}, "shorter than a form's lifetime"),
    ({"WIDGET_MAX_BODY_BYTES": "-5"}, "WIDGET_MAX_BODY_BYTES must be a number"),
    ({"WIDGET_MAX_BODY_BYTES": "1e9"}, "WIDGET_MAX_BODY_BYTES must be a number"),
    ({"WIDGET_BATCH_SIZE": "0"}, "WIDGET_BATCH_SIZE must be a number"),
    ({"WIDGET_MAX_HEADER_BYTES": "-1"}, "WIDGET_MAX_HEADER_BYTES must be a number"),
    ({"WIDGET_HEADER_TIMEOUT_SECONDS": "nan"}, "WIDGET_HEADER_TIMEOUT_SECONDS must be a number"),
    ({"WIDGET_BODY_TIMEOUT_SECONDS": "-inf"}, "WIDGET_BODY_TIMEOUT_SECONDS must be a number"),
    ({"WIDGET_MAX_CONNECTIONS": "0"}, "WIDGET_MAX_CONNECTIONS must be a number"),
    ({"WIDGET_PUBLIC_URL": "javascript:alert(1)"}, "WIDGET_PUBLIC_URL is an http:// or https:// address"),
    ({"WIDGET_PUBLIC_URL": "ftp://widgets.example.org"}, "WIDGET_PUBLIC_URL is"),
    ({"WIDGET_PUBLIC_URL": "//widgets.example.org"}, "WIDGET_PUBLIC_URL is"),
    ({"WIDGET_PUBLIC_URL": 'https://widgets.example.org/"onload="x'}, "WIDGET_PUBLIC_URL is"),
    ({"WIDGET_PUBLIC_URL": "https://widgets.example.org:99999"}, "WIDGET_PUBLIC_URL is"),
    ({"WIDGET_PUBLIC_URL": "https://user:pw@widgets.example.org"}, "WIDGET_PUBLIC_URL is"),
]


@pytest.mark.parametrize(
    ("environ", "expected"), WEAK, ids=[next(iter(e)) + "=" + next(iter(e.values())) for e, _ in WEAK]
)
def test_weak_configuration_stops_the_server_at_start_up_in_one_line(
    tmp_path: Path, environ: dict[str, str], expected: str
) -> None:
    line = one_line(serve(tmp_path, **environ))
    assert line.startswith("widget-server: "), line
    assert expected in line, line


def test_a_key_of_32_bytes_and_a_https_public_url_are_accepted(tmp_path: Path) -> None:
    statement = tmp_path / "statement.html"
    statement.write_text("<p>Keep our data safe.</p>")
    args = ("pledge", "add", "data-firewall", "--title", "Keep our data safe", "--statement-file", str(statement))
    done = widget_server(tmp_path, *args, WIDGET_PUBLIC_URL="https://widgets.example.org/pledges")
    assert done.returncode == 0, done.stderr
    # Bytes, not characters: 16 two-byte letters are 32 bytes of key.
    assert widget_server(tmp_path, "stats", "data-firewall", WIDGET_SECRET_KEY="é" * 16).returncode == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--port", "70000"), "argument --port: a port is a number from 1 to 65535, not '70000'"),
        (("--port", "0"), "argument --port: a port is a number from 1 to 65535, not '0'"),
        (("--port", "-1"), "argument --port: a port is a number from 1 to 65535, not '-1'"),
        (("--db", ""), "argument --db: the database is empty; give a SQLite file's path or a database URL"),
        (("--db", "  "), "argument --db: the database is empty; give a SQLite file's path or a database URL"),
    ],
)
def test_a_port_out_of_range_or_an_empty_database_path_is_refused_as_a_bad_argument(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    """argparse's refusal, like any bad argument: its usage, then the one line that says why."""
    done = widget_server(tmp_path, "serve", *args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("usage: widget-server serve")
    assert lines[-1] == f"widget-server serve: error: {expected}"
    assert [line for line in lines if "error" in line] == [lines[-1]]


def test_the_demo_refuses_ports_out_of_range_too(tmp_path: Path) -> None:
    done = widget_server(tmp_path, "demo", "--partner-port", "65536")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith("a port is a number from 1 to 65535, not '65536'")


def test_settings_made_in_code_are_checked_the_same_way(tmp_path: Path) -> None:
    """create_app, tests and the CLI all build Settings, so no path skips the checks."""
    with pytest.raises(ConfigError, match="WIDGET_SECRET_KEY holds a key of 8 bytes"):
        Settings.from_env(environ={}, data_dir=tmp_path, secret_key="password")
    with pytest.raises(ConfigError, match="WIDGET_CACHE_SECONDS"):
        Settings.from_env(environ={}, data_dir=tmp_path, cache_seconds=float("inf"))
    with pytest.raises(ConfigError, match="The database .* is empty"):
        Settings.from_env(environ={}, data_dir=tmp_path, db_path="")
    fine = Settings.from_env(environ={}, data_dir=tmp_path, secret_key=GOOD_KEY)
    with pytest.raises(ConfigError, match="WIDGET_MAX_BODY_BYTES"):
        fine.with_overrides(max_body_bytes=-1)
