"""Pins the behaviour of widget_server.core.richtext, the one place bleach is used.

bleach is no longer maintained. These tests describe what the pledge statement sanitiser must do,
not how bleach does it, so nh3 (or anything else) can replace it in richtext.py alone and these
tests tell whether the swap kept every promise.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from tests.conftest import Signer, make_pledge
from widget_server.core.richtext import ALLOWED_TAGS, sanitise
from widget_server.web.widget.assets import load_assets


class Elements(HTMLParser):
    """Every start tag with its attributes, as a browser-like parser reads them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(html)
    parser.close()
    return parser.found


def text_of(html: str) -> str:
    parser = Elements()
    parser.feed(html)
    parser.close()
    return "".join(parser.text)


def assert_inert(html: str) -> None:
    """Only allowlisted tags, no event handlers or styles, and links only to safe schemes."""
    for tag, attrs in elements(html):
        assert tag in ALLOWED_TAGS, f"<{tag}> survived in {html!r}"
        for name, value in attrs.items():
            assert not name.startswith("on"), f"{name} survived in {html!r}"
            assert name in {"href", "title", "target", "rel"}, f"{name} survived in {html!r}"
            if name == "href":
                assert (value or "").startswith(("https://", "http://", "mailto:", "/")), html


@pytest.mark.parametrize(
    "html",
    [
        "<p>Plain <strong>strong</strong> <em>em</em> <b>b</b> <i>i</i><br></p>",
        "<blockquote><p>“Quoted”</p></blockquote>",
        "<ul><li>one</li><li>two</li></ul><ol><li>first</li></ol>",
    ],
)
def test_allowed_formatting_is_kept_exactly(html: str) -> None:
    """Staff formatting is what the statement is for: it must come through untouched."""
    assert sanitise(html) == html


def test_the_allowlist_is_small() -> None:
    """Growing the allowlist is a security decision; this test makes it a visible one."""
    assert ALLOWED_TAGS == {"p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "blockquote", "a"}


@pytest.mark.parametrize(
    "html",
    [
        "<script>alert(1)</script><p>kept</p>",
        "<SCRIPT SRC=//evil.example/x.js></SCRIPT><p>kept</p>",
        "<svg><script>alert(1)</script></svg><p>kept</p>",
        "<style>body{display:none}</style><p>kept</p>",
        "<img src=x onerror=alert(1)><p>kept</p>",
        "<iframe src=//evil.example></iframe><p>kept</p>",
        "<form action=//evil.example><input name=x><button>go</button></form><p>kept</p>",
        "<object data=x></object><embed src=x><p>kept</p>",
        "<math><mi xlink:href='javascript:alert(1)'>x</mi></math><p>kept</p>",
        "<noscript><p title='</noscript><img src=x onerror=alert(1)>'></noscript><p>kept</p>",
        "<base href=//evil.example/><meta http-equiv=refresh content='0;url=//evil.example'><p>kept</p>",
        "<link rel=stylesheet href=//evil.example/x.css><p>kept</p>",
    ],
)
def test_scripts_styles_and_foreign_elements_are_dropped(html: str) -> None:
    cleaned = sanitise(html)
    assert_inert(cleaned)
    assert "<p>kept</p>" in cleaned
    for tag in ("script", "style", "img", "iframe", "form", "input", "object", "embed", "svg", "math", "base", "meta"):
        assert f"<{tag}" not in cleaned.lower()


@pytest.mark.parametrize(
    "html",
    [
        '<p onclick="steal()">x</p>',
        '<p onmouseover="steal()" style="position:fixed;top:0">x</p>',
        '<strong style="background:url(javascript:alert(1))">x</strong>',
        '<a href="https://ok.example/" onfocus="steal()" autofocus>x</a>',
        '<blockquote cite="javascript:alert(1)" class="big" id="main">x</blockquote>',
    ],
)
def test_event_handlers_styles_and_other_attributes_are_dropped(html: str) -> None:
    cleaned = sanitise(html)
    assert_inert(cleaned)
    assert "x" in text_of(cleaned)
    for word in ("onclick", "onmouseover", "onfocus", "style", "autofocus", "cite", "class", "id="):
        assert word not in cleaned


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "java&#09;script:alert(1)",
        "&#106;avascript:alert(1)",
        "jav&#x0A;ascript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "file:///etc/passwd",
    ],
)
def test_links_to_unsafe_schemes_lose_their_target(href: str) -> None:
    cleaned = sanitise(f'<p><a href="{href}">read more</a></p>')
    assert_inert(cleaned)
    assert "read more" in text_of(cleaned)
    assert all(attrs.get("href") is None for tag, attrs in elements(cleaned) if tag == "a")


@pytest.mark.parametrize(
    "html",
    [
        '<a href="https://campaign.example/why">why</a>',
        '<a href="https://campaign.example/" target="_self" rel="opener">home</a>',
        '<a href="mailto:hello@campaign.example">write</a>',
        "Read https://campaign.org/why today",
    ],
)
def test_links_open_outside_the_widget_without_opener_or_referrer(html: str) -> None:
    """A link in the statement leaves the iframe; the new page must not control or learn ours."""
    cleaned = sanitise(html)
    assert_inert(cleaned)
    links = [attrs for tag, attrs in elements(cleaned) if tag == "a"]
    assert links, cleaned
    for attrs in links:
        assert attrs["rel"] == "noopener noreferrer"
        assert attrs["target"] == "_blank"
        assert str(attrs["href"]).startswith(("https://campaign.", "mailto:"))


def test_comments_are_removed() -> None:
    cleaned = sanitise("<!-- internal note --><p>Public</p><!--[if IE]><script>x()</script><![endif]-->")
    assert "internal note" not in cleaned
    assert "<!--" not in cleaned
    assert_inert(cleaned)


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("I <3 this", "I &lt;3 this"),
        ("<p>Smith &amp; Sons</p>", "<p>Smith &amp; Sons</p>"),
        ("<p>5 > 3 & 2 < 4</p>", "<p>5 &gt; 3 &amp; 2 &lt; 4</p>"),
        ("<p>unclosed <b>bold", "<p>unclosed <b>bold</b></p>"),
        ("<p>Café “quoted” — ünïcødé ✊</p>", "<p>Café “quoted” — ünïcødé ✊</p>"),
    ],
)
def test_honest_text_survives_and_is_well_formed(html: str, expected: str) -> None:
    """Escaped, never deleted: "<3" and "&" are what staff meant to write."""
    assert sanitise(html) == expected


def test_sanitising_twice_changes_nothing() -> None:
    """The statement is sanitised when saved; doing it again (an edit) must not mangle it."""
    once = sanitise('<p>I <3 <a href="https://campaign.example">us</a> & <script>x()</script></p>')
    assert sanitise(once) == once


def test_a_hostile_statement_is_inert_in_the_embed_page(settings, make_client, clock) -> None:
    """End to end: staff rich text is sanitised when saved, so the page a supporter sees is clean."""
    hostile = (
        '<p onclick="steal()">Sign <script>alert(1)</script><a href="javascript:alert(2)">here</a>'
        '<img src=x onerror=alert(3)><a href="https://campaign.example/why">why</a></p>'
    )
    make_pledge(settings, statement_html=hostile)
    page = Signer(make_client(settings), clock).embed()
    assert page.status_code == 200
    start = page.text.index('<div class="statement">')
    statement = page.text[start : page.text.index("</div>", start)]
    tags = elements(statement)
    assert [tag for tag, _ in tags] == ["div", "p", "a", "a"]
    assert_inert(statement.replace('<div class="statement">', ""))
    scripts = [attrs for tag, attrs in elements(page.text) if tag == "script"]
    assert scripts == [{"src": load_assets().url("frame.js"), "defer": None, "blocking": "render"}]
