"""Issue 10, item 14: a repeat signature is answered at the same moment as a new one.

A repeat writes nothing, so its write ends sooner; the signing use case holds every answer to
the same moment after the write began, so a post's time does not tell whether an address had
signed. Time here is a fake timer that the fake writer and the fake sleep move.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import FakeClock
from tests.unit.test_signing import DIRECT_ORIGINS, KEYS, ORIGIN, PARTNER, PLEDGE, Rows
from widget_server.core.models import NewSignature
from widget_server.security.ratelimit import RateLimiter
from widget_server.security.tokens import FormClaim, Tokens
from widget_server.services.signing import MAX_HOLD_SECONDS, Signed, Signing
from widget_server.settings import Settings

NEW_WRITE, REPEAT_WRITE = 0.004, 0.001  # seconds: a commit that writes, and one that does not


@dataclass
class Timer:
    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass(frozen=True)
class Written:
    created: bool
    total: int
    alone: bool = True


@dataclass
class Writer:
    timer: Timer
    seen: set[str] = field(default_factory=set)
    alone: bool = True  # False: as if every batch held other signatures too

    async def submit(self, signature: NewSignature) -> Written:
        created = signature.email not in self.seen
        self.seen.add(signature.email)
        self.timer.now += NEW_WRITE if created else REPEAT_WRITE
        return Written(created, len(self.seen), self.alone)


def a_signing(clock: FakeClock, timer: Timer, tokens: Tokens, writer: Any) -> Signing:
    return Signing(
        settings=Settings(direct_frame_origins=DIRECT_ORIGINS),
        catalog=Rows(),
        writer=writer,
        tokens=tokens,
        partner_limiter=RateLimiter(None, clock),
        clock=clock,
        timer=timer,
        sleep=timer.sleep,
    )


def test_a_repeat_signature_is_answered_no_sooner_than_a_new_one() -> None:
    clock, timer, tokens = FakeClock(), Timer(), Tokens(KEYS)
    signing = a_signing(clock, timer, tokens, Writer(timer))
    form = tokens.form_token(FormClaim(PLEDGE.id, PARTNER.id, ORIGIN, clock.now, {}, version=PARTNER.token_version))
    clock.advance(5)

    def answered_after(email: str) -> float:
        started = timer.now
        posted = {"name": "Ana Teacher", "email": email, "form_token": form}
        assert isinstance(asyncio.run(signing.sign(PLEDGE, posted)), Signed)
        return timer.now - started

    for n in range(50):  # the typical write time is learnt from new signatures
        answered_after(f"new{n}@example.org")
    new = answered_after("another@example.org")
    repeat = answered_after("new1@example.org")
    assert repeat >= new > NEW_WRITE  # both held past the typical write …
    assert abs(repeat - new) < 1e-6  # … to the same moment, though the repeat wrote nothing
    assert new - NEW_WRITE <= MAX_HOLD_SECONDS + 1e-6  # and never long beyond a typical write


def test_answers_from_a_shared_batch_are_not_held() -> None:
    """A batch answers all its members at one commit, so its time tells nothing of any one of them:
    holding them would only add latency and shrink the next batches (BENCHMARKS.md)."""
    clock, timer, tokens = FakeClock(), Timer(), Tokens(KEYS)
    writer = Writer(timer)
    signing = a_signing(clock, timer, tokens, writer)
    form = tokens.form_token(FormClaim(PLEDGE.id, PARTNER.id, ORIGIN, clock.now, {}, version=PARTNER.token_version))
    clock.advance(5)

    def sign(email: str) -> None:
        posted = {"name": "Ana Teacher", "email": email, "form_token": form}
        assert isinstance(asyncio.run(signing.sign(PLEDGE, posted)), Signed)

    for n in range(20):  # alone: the typical write is learnt and answers are held
        sign(f"new{n}@example.org")
    assert timer.slept
    writer.alone, timer.slept = False, []
    sign("shared@example.org")
    sign("new1@example.org")  # a repeat, in a shared batch
    assert timer.slept == []
