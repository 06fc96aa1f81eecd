"""The one writer: batches answer only after their commit, and nothing outside a write stops it."""

from __future__ import annotations

import asyncio

import pytest

from widget_server.core.models import NewSignature, Pledge
from widget_server.errors import Unavailable
from widget_server.storage.engines import open_store
from widget_server.storage.store import BatchResult, Store
from widget_server.storage.writer import SignatureWriter, WriteResult


def signature(email: str) -> NewSignature:
    return NewSignature(pledge_id=1, partner_id=None, email=email, name="Ana", created_at="2026-11-24T12:00:00Z")


async def a_pledge(store: Store) -> Pledge:
    return await store.insert_pledge(
        slug="p", title="T", statement_html="s", goal=None, privacy_url=None, contact=None, now="now"
    )


def test_concurrent_signatures_share_commits_and_duplicates_count_once(store_url: str) -> None:
    commits: list[BatchResult] = []

    async def go() -> tuple[list[tuple[bool, int]], list[str]]:
        async with open_store(store_url) as store:
            await a_pledge(store)
            writer = SignatureWriter(store, on_commit=commits.append)
            writer.start()
            emails = [f"s{i}@example.org" for i in range(50)] + ["s0@example.org"]
            results = await asyncio.gather(*(writer.submit(signature(e)) for e in emails))
            await writer.close()
            return [(r.created, r.total) for r in results], await store.integrity()

    results, problems = asyncio.run(go())
    assert sum(created for created, _ in results) == 50
    assert results[-1][0] is False  # the duplicate is answered, not counted
    assert max(total for _, total in results) == 50
    assert len(commits) < 51  # group commit: concurrent signatures shared transactions
    assert problems == []


def test_a_failing_cache_update_does_not_stop_the_writer(store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    def broken(result: BatchResult) -> None:
        raise RuntimeError("cache broke")

    async def go() -> list[bool]:
        async with open_store(store_url) as store:
            await a_pledge(store)
            writer = SignatureWriter(store, on_commit=broken)
            writer.start()
            first = await writer.submit(signature("a@example.org"))
            second = await writer.submit(signature("b@example.org"))  # the writer is still alive
            await writer.close()
            with pytest.raises(Unavailable):
                await writer.submit(signature("c@example.org"))
            return [first.created, second.created]

    assert asyncio.run(go()) == [True, True]
    assert "could not pass the new counts on" in caplog.text


def test_one_bad_signature_fails_alone_and_its_batch_neighbours_are_stored(store_url: str) -> None:
    async def go() -> tuple[list[WriteResult | BaseException], list[str]]:
        async with open_store(store_url) as store:
            await a_pledge(store)
            writer = SignatureWriter(store)
            writer.start()
            bad = NewSignature(pledge_id=999, partner_id=None, email="x@example.org", name="X", created_at="now")
            outcomes = await asyncio.gather(
                writer.submit(signature("a@example.org")),
                writer.submit(bad),
                writer.submit(signature("b@example.org")),
                return_exceptions=True,
            )
            await writer.close()
            return list(outcomes), await store.integrity()

    outcomes, problems = asyncio.run(go())
    assert isinstance(outcomes[1], Unavailable)
    first, _, third = outcomes
    assert isinstance(first, WriteResult) and isinstance(third, WriteResult)
    assert [first.created, third.created] == [True, True]
    assert problems == []


def test_a_signature_is_alone_only_when_its_batch_held_nothing_else(store_url: str) -> None:
    """The signing use case holds only answers whose commit was their own (services/signing.py):
    a batch's members are all answered at its one commit, so `alone` must be exact."""

    async def go() -> tuple[WriteResult, list[WriteResult]]:
        async with open_store(store_url) as store:
            await a_pledge(store)
            writer = SignatureWriter(store)
            writer.start()
            single = await writer.submit(signature("one@example.org"))
            together = await asyncio.gather(*(writer.submit(signature(f"m{i}@example.org")) for i in range(20)))
            await writer.close()
            return single, together

    single, together = asyncio.run(go())
    assert single.alone is True
    # Twenty submitted in one go: the first may be taken before the rest arrive, never all alone.
    assert sum(not r.alone for r in together) >= 19
