"""Kept pages: one render per distinct page, every new count shown, and a key made of exactly
what the page shows (so a row re-read with a higher count finds the same page, and a row with
anything else changed does not). A page filled for an answer that cannot be gzipped must be the
same bytes as one that can."""

from __future__ import annotations

import dataclasses
import functools
import zlib
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from widget_server.core.attribution import Embedding
from widget_server.core.models import Partner, Pledge
from widget_server.web.fast.compressed import CompressiblePage, CompressiblePageCache, FilledPage, gzipped
from widget_server.web.fast.pagecache import Page, PageCache, slot, split_page
from widget_server.web.widget import render
from widget_server.web.widget.render import COUNT_SLOTS, cached_page, context, count_fields, page_key

PROPERTY = settings(max_examples=300, database=None, suppress_health_check=[HealthCheck.too_slow])

PLEDGE = Pledge(
    id=1,
    slug="data-firewall",
    title="Keep our data safe",
    statement_html="<p>Keep it away.</p>",
    goal=1000,
    privacy_url=None,
    contact="0800 000 000",
    signature_count=5,
)
PARTNER = Partner(
    id=7,
    pledge_id=1,
    name="Riverside",
    origins=("https://riverside.example",),
    token_version=1,
    revoked=False,
    signature_count=3,
)
EMBEDDING = Embedding(PLEDGE, PARTNER, "partner-token", PARTNER.origins, "https://riverside.example")


def badge(count: str, total_text: str, progress: str) -> str:
    return f"<p>{total_text} people have signed</p><progress value={progress}>{count}</progress>"


@pytest.mark.parametrize("make_cache", [PageCache, CompressiblePageCache], ids=["plain", "compressible"])
def test_every_new_count_is_shown_without_a_new_render(
    make_cache: Callable[[], PageCache | CompressiblePageCache],
) -> None:
    cache = make_cache()
    renders: list[int] = []

    def render() -> str:
        renders.append(1)
        return badge(COUNT_SLOTS["total"], COUNT_SLOTS["total_text"], COUNT_SLOTS["progress"])

    for total in (2, 3, 999, 1000, 1232, 1_000_000):
        # The catalog re-reads the rows with a higher count each time.
        embedding = dataclasses.replace(
            EMBEDDING,
            pledge=dataclasses.replace(PLEDGE, signature_count=total),
            partner=dataclasses.replace(PARTNER, signature_count=total),
        )
        page = cache.get(page_key("counter.html", embedding, total), render)
        shown = page.fill(count_fields(total, PLEDGE.goal)).decode()
        assert shown == badge(str(total), f"{total:,}", str(min(total, 1000)))
    assert len(renders) == 1


def test_the_key_ignores_the_rows_counts_only() -> None:
    recounted = dataclasses.replace(
        EMBEDDING,
        pledge=dataclasses.replace(PLEDGE, signature_count=999),
        partner=dataclasses.replace(PARTNER, signature_count=999),
    )
    assert recounted != EMBEDDING  # the rows compare with their counts, as ordinary records do
    assert page_key("embed.html", recounted, 5) == page_key("embed.html", EMBEDDING, 5)


def _pledge(**changes: object) -> Embedding:
    return dataclasses.replace(EMBEDDING, pledge=dataclasses.replace(PLEDGE, **changes))  # type: ignore[arg-type]


def _partner(**changes: object) -> Embedding:
    return dataclasses.replace(EMBEDDING, partner=dataclasses.replace(PARTNER, **changes))  # type: ignore[arg-type]


SHOWN_ELSEWHERE = {
    "pledge id": _pledge(id=2),
    "slug": _pledge(slug="other"),
    "title": _pledge(title="New title"),
    "statement": _pledge(statement_html="<p>New.</p>"),
    "goal": _pledge(goal=2000),
    "no goal": _pledge(goal=None),
    "privacy url": _pledge(privacy_url="https://x.example/p"),
    "contact": _pledge(contact=None),
    "closed": _pledge(closed=True),
    "optional questions": _pledge(optional_fields=("occupation",)),
    "partner id": _partner(id=8),
    "partner name": _partner(name="Hillside"),
    "partner origins": _partner(origins=("https://a.example",)),
    "token version": _partner(token_version=2),
    "no partner": dataclasses.replace(EMBEDDING, partner=None),
    "share-link token": dataclasses.replace(EMBEDDING, partner_token="another-token"),
    "frame ancestors": dataclasses.replace(EMBEDDING, frame_ancestors=()),
    "parent origin": dataclasses.replace(EMBEDDING, parent_origin=""),
}


@pytest.mark.parametrize("changed", SHOWN_ELSEWHERE.values(), ids=SHOWN_ELSEWHERE.keys())
def test_anything_else_the_page_shows_is_another_page(changed: Embedding) -> None:
    assert page_key("embed.html", changed, 5) != page_key("embed.html", EMBEDDING, 5)


def test_one_signer_template_and_variant_are_other_pages() -> None:
    key = page_key("thanks.html", EMBEDDING, 5, True)
    assert page_key("thanks.html", EMBEDDING, 6, True) == key  # the count itself is a slot
    assert page_key("thanks.html", EMBEDDING, 1, True) != key  # "1 person has"
    assert page_key("thanks.html", EMBEDDING, 5, False) != key  # no name given
    assert page_key("embed.html", EMBEDDING, 5, True) != key


def test_slots_are_filled_with_the_values_given_and_text_cannot_pose_as_one() -> None:
    cache = PageCache()
    typed = "slot-name-slot"  # what a signer could type; the real marks are random
    page = cache.get("k", lambda: f"<h2>Thank you, {slot('name')}. {typed}</h2>")
    assert page.fill({"name": "Ana &lt;b&gt;"}) == f"<h2>Thank you, Ana &lt;b&gt;. {typed}</h2>".encode()


def test_kept_pages_are_bounded_in_number_and_bytes() -> None:
    cache = PageCache(size=3, max_bytes=10**6)
    for n in range(10):
        cache.get(n, lambda: "page")
    assert len(cache._pages) == 3
    cache = PageCache(size=100, max_bytes=20_000)
    for n in range(50):
        cache.get(n, lambda: "x" * 5000)
    assert cache._pages.bytes <= 20_000 and len(cache._pages) < 5


# Filling: one bytes formatting per page must give what joining the pieces and values gave.

TEXT = st.text(st.sampled_from("ab%<>&\"'é€ \n"), max_size=12)
NAMES = st.sampled_from(["total", "total_text", "progress", "form_token", "name"])


def joined(page: Page, values: dict[str, str]) -> bytes:
    """The reading `Page.fill` replaced: each piece, then its slot's value, in order."""
    parts = [page.pieces[0]]
    for name, piece in zip(page.slots, page.pieces[1:], strict=True):
        parts += (values[name].encode(), piece)
    return b"".join(parts)


@PROPERTY
@given(st.lists(st.tuples(TEXT, NAMES), max_size=6), TEXT, st.dictionaries(NAMES, TEXT))
@example([], "100%", {})
@example([("50%d %s %%", "name")], "%b", {"name": "%s"})
@example([("a", "total")], "", {"total": "1"})
def test_a_fill_is_the_pieces_joined_with_their_values(
    parts: list[tuple[str, str]], tail: str, given_values: dict[str, str]
) -> None:
    page = split_page("".join(text + slot(name) for text, name in parts) + tail)
    values = {name: given_values.get(name, name.upper() + "é") for name in page.slots}
    expected = joined(page, values)
    assert page.fill(values) == expected
    kept = CompressiblePage(page)
    plain, for_gzip = kept.fill(values, gzip_wanted=False), kept.fill(values)
    assert type(plain) is bytes and plain == expected
    # The bytes that can be gzipped are the same bytes, and inflate to them.
    assert type(for_gzip) is FilledPage and for_gzip == expected
    assert zlib.decompress(gzipped(for_gzip), 16 + zlib.MAX_WBITS) == expected


def test_a_page_has_one_piece_more_than_slots() -> None:
    with pytest.raises(ValueError):
        Page((b"a", b"b"), ())


# A kept page, whatever rows come and go: what a fresh render of the same view shows.


class _Templates:
    """Renders everything `context` gives a frame page, so a page kept under too short a key shows."""

    def __init__(self) -> None:
        self.renders = 0

    def get_template(self, name: str) -> _Templates:
        self.name = name
        return self

    def render(self, values: dict[str, Any]) -> str:
        self.renders += 1
        shown = {key: _shown(value) for key, value in values.items()}
        return f"{self.name}: {sorted(shown.items(), key=lambda item: item[0])!r}"


# What of a row no page shows: its count (a slot instead), and what only the server acts on.
NOT_SHOWN = {"signature_count", "revoked", "webhook_url", "pledge_id", "confirm_email"}


def _shown(value: object) -> object:
    if isinstance(value, Pledge | Partner):
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value) if f.name not in NOT_SHOWN]
    return value


def _request(cache: CompressiblePageCache, templates: _Templates) -> Any:
    state = SimpleNamespace(page_cache=cache, templates=templates)
    return SimpleNamespace(app=SimpleNamespace(state=state), scope={"method": "GET", "headers": []})


SERVICES: Any = SimpleNamespace(settings=SimpleNamespace(public_url="https://widget.example"))

# Equal rows as separate objects (as after a reload), re-read with other counts, and changed.
PLEDGES = [
    PLEDGE,
    dataclasses.replace(PLEDGE),
    dataclasses.replace(PLEDGE, signature_count=6),
    dataclasses.replace(PLEDGE, title="New title"),
    dataclasses.replace(PLEDGE, closed=True),
    dataclasses.replace(PLEDGE, id=2, slug="other"),
]
PARTNERS = [
    PARTNER,
    dataclasses.replace(PARTNER, signature_count=9),
    dataclasses.replace(PARTNER, name="Hillside"),
    None,
]
VIEWS = st.tuples(
    st.sampled_from(PLEDGES),
    st.sampled_from(PARTNERS),
    st.sampled_from(["partner-token", "other-token", ""]),
    st.sampled_from([PARTNER.origins, ()]),
    st.sampled_from(["https://riverside.example", ""]),
    st.sampled_from([0, 1, 2, 5]),
    st.sampled_from([("embed.html", ()), ("thanks.html", (True,)), ("thanks.html", (False,)), ("counter.html", (9,))]),
)


@PROPERTY
@given(st.lists(VIEWS, min_size=1, max_size=25), st.sampled_from([1, 2, 512]))
def test_a_kept_page_shows_what_a_fresh_render_of_the_view_shows(views: list[Any], size: int) -> None:
    cache, templates = CompressiblePageCache(size=size), _Templates()
    request = _request(cache, templates)
    for pledge, partner, token, ancestors, parent, total, (template, variant) in views:
        embedding = Embedding(pledge, partner, token, ancestors, parent)

        # The variant is what else the template is given (the badge's goal, a name or none).
        make = functools.partial(context, SERVICES, embedding, total, variant=variant)

        page = cached_page(request, template, embedding, total, make, *variant)
        # A page rendered afresh for this very view shows the same, the count filled in alike.
        fresh = split_page(render.render(request, template, {**make(), **COUNT_SLOTS}))
        values = count_fields(total, pledge.goal)
        assert page.fill(values) == fresh.fill(values)
        if size == 512:  # nothing dropped: the very page the key finds
            assert page is cache.get(page_key(template, embedding, total, *variant), lambda: "not kept")


def test_a_row_re_read_with_a_higher_count_finds_the_same_page_and_shows_the_count() -> None:
    cache, templates = CompressiblePageCache(), _Templates()
    request = _request(cache, templates)
    pages = set()
    for total in (2, 3, 999, 1000, 1232):
        for _ in range(2):  # the same rows again, then re-read with the new count
            embedding = dataclasses.replace(
                EMBEDDING,
                pledge=dataclasses.replace(PLEDGE, signature_count=total),
                partner=dataclasses.replace(PARTNER, signature_count=total),
            )
            page = cached_page(
                request, "embed.html", embedding, total, functools.partial(context, SERVICES, embedding, total)
            )
            pages.add(id(page))
            shown = page.fill(count_fields(total, PLEDGE.goal))
            assert f"('total_text', '{total:,}')".encode() in shown
    assert len(pages) == 1 and templates.renders == 1


def test_a_page_is_filled_for_gzip_only_when_the_answer_can_be_gzipped() -> None:
    page = CompressiblePage(split_page(f"<p>{slot('total')} signed</p>"))
    plain = _request(CompressiblePageCache(), _Templates())
    takes_gzip = SimpleNamespace(scope={"method": "GET", "headers": [(b"accept-encoding", b"gzip")]})
    head = SimpleNamespace(scope={"method": "HEAD", "headers": [(b"accept-encoding", b"gzip")]})
    requests: list[Any] = [plain, takes_gzip, head]
    answers = [render.fill(request, page, {"total": "5"}) for request in requests]
    assert answers == [b"<p>5 signed</p>"] * 3
    assert [type(answer) for answer in answers] == [bytes, FilledPage, bytes]
