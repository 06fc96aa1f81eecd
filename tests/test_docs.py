"""The README stays true to the code: every setting documented, CI runs the README's command."""

from __future__ import annotations

import re
from pathlib import Path

from widget_server.cli import build_parser
from widget_server.settings import help_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    for env, _, _ in help_table():
        assert f"`{env}`" in README, env


def test_ci_runs_the_readmes_test_command() -> None:
    assert "\nscripts/test\n" in README
    assert re.search(r"^exec scripts/test$", (ROOT / ".ci/run").read_text(), re.M)


def test_every_cli_command_is_in_the_readme() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        assert f"widget-server {name}" in README, name
