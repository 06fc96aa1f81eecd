"""Pages that arrive small and are cached right: HTML compressed when the client takes gzip, at
a cost paid once per distinct page; the frame's script and stylesheet at content-hashed URLs
cached for a year; the loader at its stable URL with a short cache and an ETag; an icon at
/favicon.ico; a meta description of the pledge on its public pages.

Most of it is plain HTTP, asked of the app in-process; the first view's bytes are measured in
Chromium, over the network, as a partner's visitor receives them.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import Hosts
from tests.browser.firstview import first_view
from tests.conftest import PARTNER_ORIGIN, FakeClock, Signer, make_partner, make_pledge
from widget_server.core.snippets import iframe_snippet
from widget_server.files import STATIC_DIR

GZIP = {"Accept-Encoding": "gzip, deflate, br, zstd"}
PLAIN = {"Accept-Encoding": "identity"}


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, pattern
    return match.group(1)


def test_pages_are_gzipped_for_clients_that_take_it_and_plain_for_others(
    settings,
    make_client,
    clock: FakeClock,
) -> None:
    make_pledge(settings)
    creds = make_partner(settings)
    client = make_client(settings)
    signer = Signer(client, clock, token=creds.token, parent=PARTNER_ORIGIN)
    zipped = signer.embed(**GZIP)
    plain = signer.embed(**PLAIN)  # the same tenth of a second on the fake clock: the same page
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "accept-encoding"
    assert int(zipped.headers["content-length"]) < len(plain.content) / 2
    assert zipped.content == plain.content  # httpx inflated it: byte for byte the plain page
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "accept-encoding"
    refused = signer.embed(**{"Accept-Encoding": "gzip;q=0, *"})
    assert "content-encoding" not in refused.headers
    # The thank-you page carries the signer's name in a slot; it arrives whole.
    form_token = signer.form()
    clock.advance(5)
    thanks = signer.post(form_token, headers=GZIP, name="Ana <Teacher>")
    assert thanks.headers["content-encoding"] == "gzip"
    assert "Thank you, Ana &lt;Teacher&gt;. You have signed." in thanks.text
    # Small answers are not worth it.
    count = client.get("/api/pledges/data-firewall/count", headers=GZIP)
    assert "content-encoding" not in count.headers


def test_a_kept_page_is_compressed_once_however_often_it_is_asked_for(
    settings,
    make_client,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_pledge(settings)
    creds = make_partner(settings)
    client = make_client(settings)
    signer = Signer(client, clock, token=creds.token, parent=PARTNER_ORIGIN)
    for n in range(2):  # past "1 person has", which is a page of its own
        signer.sign(email=f"first{n}@example.org")
    signer.embed(**GZIP)
    compressors: list[int] = []
    real = zlib.compressobj

    def counted(level: int, method: int, wbits: int, mem_level: int) -> zlib._Compress:
        compressors.append(1)
        return real(level, method, wbits, mem_level)

    monkeypatch.setattr(zlib, "compressobj", counted)
    pages = []
    for n in range(12):
        clock.advance(0.5)  # a new form token each time
        if n % 4 == 3:  # and now and then a new count
            form_token = signer.form()
            clock.advance(5)
            assert signer.post(form_token, email=f"n{n}@example.org", headers=PLAIN).status_code == 200
        pages.append(signer.embed(**GZIP))
    assert compressors == []
    tokens = {found(r'name="form_token" value="([^"]+)"', page.text) for page in pages}
    assert len(tokens) == len(pages)  # every answer was its own, decompressed whole by httpx
    assert all(page.headers["content-encoding"] == "gzip" for page in pages)


def test_the_frame_loads_its_script_and_styles_from_content_hashed_urls_cached_a_year(
    settings,
    make_client,
    clock: FakeClock,
) -> None:
    make_pledge(settings)
    client = make_client(settings)
    page = client.get("/pledge/data-firewall").text
    urls = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert sorted(re.sub(r"\.[0-9a-f]{12}\.", ".", url) for url in urls) == ["/static/frame.js", "/static/widget.css"]
    for url in urls:
        answer = client.get(url, headers=GZIP)
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert answer.headers["content-encoding"] == "gzip"
        assert answer.content == (STATIC_DIR / re.sub(r"\.[0-9a-f]{12}\.", ".", url.rsplit("/", 1)[1])).read_bytes()
    # The plain names still answer, briefly cached, for pages rendered before a deploy.
    assert client.get("/static/frame.js").headers["cache-control"] == "public, max-age=300"


def test_the_loader_keeps_its_url_with_a_short_cache_and_an_etag(settings, make_client) -> None:
    client = make_client(settings)
    loader = client.get("/widget.js", headers=GZIP)
    assert loader.headers["cache-control"] == "public, max-age=300"
    assert client.get("/widget.js", headers={"If-None-Match": loader.headers["etag"]}).status_code == 304


def test_the_favicon_answers_with_a_small_icon(settings, make_client) -> None:
    answer = make_client(settings).get("/favicon.ico")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/x-icon"
    assert answer.content[:4] == b"\x00\x00\x01\x00" and len(answer.content) < 1024
    assert "max-age" in answer.headers["cache-control"]


def test_public_pages_describe_the_pledge(settings, make_client) -> None:
    make_pledge(
        settings, statement_html="<p>We ask public services to keep <em>our</em> data &amp; records safe.</p>" * 5
    )
    client = make_client(settings)
    for path in ("/pledge/data-firewall", "/pledge/data-firewall/privacy", "/pledge/data-firewall/organisations"):
        page = client.get(path).text
        [description] = re.findall(r'<meta name="description" content="([^"]*)">', page)
        assert description.startswith("We ask public services to keep our data &amp; records safe. We ask"), path
        assert len(description.replace("&amp;", "&")) <= 155 and description.endswith("…"), description


def test_the_plain_iframe_snippet_shows_where_the_source_goes() -> None:
    snippet = iframe_snippet("https://widgets.example", "data-firewall", "TOKEN")
    src = found(r'src="([^"]+)"', snippet)
    assert httpx.URL(src.replace("&amp;", "&")).params["source"] == "website"
    assert "source=newsletter" in snippet  # the comment says how to change it


@pytest.mark.browser
def test_a_first_view_of_the_form_is_small(
    hosts: Hosts, browser: Browser, record_property: Callable[..., None]
) -> None:
    """Everything a visitor's browser receives from the widget server for a page with the form."""
    view = first_view(browser, hosts.site.url + "/bare", hosts.server.url)
    record_property("first_view_bytes", view.total)
    kinds = sorted(view.responses)
    assert kinds == ["css", "document", "loader", "script"], view.responses
    assert all(view.encodings[kind] == "gzip" for kind in kinds), view.encodings
    # It was 14,815 bytes before pages were compressed (BENCHMARKS.md, "A partner's page").
    assert view.total < 12_500, view.responses
