"""The signing use case with a pledge that asks for confirmation: the signature goes to the writer
as pending, the outcome says so whatever the address had done, a bot gets the same answer, and
the equal-time hold covers a waiting and a counted address as it covers a new one."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field

from tests.conftest import FakeClock
from tests.unit.test_signing import KEYS, ORIGIN, PARTNER, PLEDGE
from tests.unit.test_signing_timing import NEW_WRITE, REPEAT_WRITE, Timer, Written, a_signing
from widget_server.core.models import NewSignature, Pledge
from widget_server.security.tokens import FormClaim, Tokens
from widget_server.services.signing import MAX_HOLD_SECONDS, Signed, Signing

CONFIRMING = dataclasses.replace(PLEDGE, confirm_email=True)


@dataclass
class PendingWriter:
    """A store's answers for pending signatures: a new one and a re-send write (a row, an
    outbox message), a counted address writes nothing."""

    timer: Timer
    waiting: set[str] = field(default_factory=set)
    counted: set[str] = field(default_factory=set)
    seen: list[NewSignature] = field(default_factory=list)

    async def submit(self, signature: NewSignature) -> Written:
        self.seen.append(signature)
        if signature.email in self.counted:
            self.timer.now += REPEAT_WRITE
            return Written(False, 41)
        created = signature.email not in self.waiting
        self.waiting.add(signature.email)
        self.timer.now += NEW_WRITE
        return Written(created, 41)


def signing_for(writer: PendingWriter, timer: Timer, clock: FakeClock, tokens: Tokens) -> Signing:
    return a_signing(clock, timer, tokens, writer)


def test_a_confirming_pledge_writes_pending_and_answers_pending_whatever_the_address_did() -> None:
    clock, timer, tokens = FakeClock(), Timer(), Tokens(KEYS)
    writer = PendingWriter(timer, counted={"counted@example.org"})
    signing = signing_for(writer, timer, clock, tokens)
    form = tokens.form_token(FormClaim(PLEDGE.id, PARTNER.id, ORIGIN, clock.now, {}, version=PARTNER.token_version))
    clock.advance(5)

    def answered_after(pledge: Pledge, email: str, **extra: str) -> tuple[Signed, float]:
        started = timer.now
        posted = {"name": "Ana Teacher", "email": email, "form_token": form, **extra}
        outcome = asyncio.run(signing.sign(pledge, posted))
        assert isinstance(outcome, Signed)
        return outcome, timer.now - started

    for n in range(50):  # the typical write time is learnt from new signatures
        answered_after(CONFIRMING, f"new{n}@example.org")
    assert all(s.pending for s in writer.seen)

    new, new_took = answered_after(CONFIRMING, "another@example.org")
    waiting, waiting_took = answered_after(CONFIRMING, "new1@example.org")
    counted, counted_took = answered_after(CONFIRMING, "counted@example.org")
    bot, bot_took = answered_after(CONFIRMING, "bot@example.org", website="http://spam.example")
    assert new.pending and waiting.pending and counted.pending and bot.pending
    assert new.total == waiting.total == counted.total == bot.total == 41  # nothing counted yet
    assert writer.seen[-1].email == "counted@example.org"  # the bot wrote nothing
    for took in (waiting_took, counted_took, bot_took):
        assert abs(took - new_took) < 1e-6  # held to the same moment
    assert new_took - NEW_WRITE <= MAX_HOLD_SECONDS + 1e-6

    # Confirmation off: counted at once, and the bot's thank-you shows one more, as before.
    plain, _ = answered_after(PLEDGE, "plain@example.org")
    assert not plain.pending and not writer.seen[-1].pending
    assert not answered_after(PLEDGE, "bot@example.org", website="x")[0].pending
