"""Kept pages: one render per distinct page, every new count shown, and a key made of exactly
what the page shows (so a row re-read with a higher count finds the same page, and a row with
anything else changed does not)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from widget_server.core.attribution import Embedding
from widget_server.core.models import Partner, Pledge
from widget_server.web.fast.compressed import CompressiblePageCache
from widget_server.web.fast.pagecache import PageCache, slot
from widget_server.web.widget.render import COUNT_SLOTS, count_fields, page_key

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
