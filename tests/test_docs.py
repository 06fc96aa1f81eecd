"""The README stays true to the code: every setting documented, CI runs the README's command."""

from __future__ import annotations

import argparse
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
    [commands] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    for name in commands.choices:
        assert f"widget-server {name}" in README, name


def _how_it_is_built() -> str:
    return README.split("## How it is built", 1)[1].split("\n## ", 1)[0]


def test_how_it_is_built_lists_every_module_with_its_job() -> None:
    package = ROOT / "widget_server"
    modules = {p.relative_to(package).as_posix() for p in package.rglob("*.py") if p.name != "__init__.py"}
    entries = dict(re.findall(r"^\s*- `([\w/]+\.py)`: (.+)$", _how_it_is_built(), re.M))
    assert sorted(modules - set(entries)) == []  # every module is listed …
    assert sorted(set(entries) - modules) == []  # … and nothing that is gone
    assert all(len(job.split()) >= 3 for job in entries.values())  # each with its job in words
