"""The signing use case: what a supporter posted becomes a signature, a second ask, or a refusal.

`Signing.sign` takes the pledge and the posted fields and answers with an outcome: `Signed`
(stored, or a bot answered exactly as a person; `pending` when the pledge asks signers to confirm
from their mailbox, whatever the address had done before), `AskAgain` (a sentence and the form, input kept,
with a fresh form token) or `Refused` (a domain error to show inside the partner's frames).
A post whose form token cannot be read is refused by raising the domain error: nothing says
where it may be shown. It knows nothing of HTTP; the web edge parses the post and renders the
outcome.

Forms are stamped in ticks of a tenth of a second (`tick_after`), rounded up, so forms opened in
the same tick can share a form token; SECURITY.md ("Forged attribution") says why that is safe.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from widget_server.core.attribution import Embedding, signing_partner
from widget_server.core.models import Counts, NewSignature, Partner, Pledge
from widget_server.core.signform import SignForm
from widget_server.core.times import iso_utc
from widget_server.errors import Invalid, NotAllowed, RateLimited, WidgetError
from widget_server.messages import (
    FORM_EXPIRED,
    FORM_OUT_OF_DATE,
    OTHER_PLEDGE,
    PARTNER_BUSY,
    PLEDGE_CLOSED,
    SLOW_DOWN,
    TOO_QUICK,
)
from widget_server.security.tokens import FormClaim, Tokens
from widget_server.settings import Settings

TICKS_PER_SECOND = 10
# How far the typical time of a signature written alone is followed (an exponential average),
# how much longer than it such an answer is held (enough that nearly every new signature's own
# write ends before, so first and repeat signatures are answered at the same moment), and the
# most any answer is held beyond a typical write. Only a signature whose batch held it alone is
# held: a shared batch answers all its members at one commit, and holding them would only shrink
# the next batches and cost throughput (BENCHMARKS.md).
WRITE_TIME_WEIGHT = 0.05
ANSWER_HELD_FACTOR = 2.0
MAX_HOLD_SECONDS = 0.002


def tick_after(now: float) -> int:
    """The first tick (tenth of a second) at or after `now`, exactly, float rounding included.

    Up, never down: a form's stamp is never earlier than its real render, so the minimum fill
    time is never shortened (a form is judged at most one tick younger than it is, and its
    expiry comes at most one tick late).
    """
    tick = math.ceil(now * TICKS_PER_SECOND)
    while tick / TICKS_PER_SECOND < now:
        tick += 1
    return tick


@dataclass(frozen=True)
class Signed:
    """Counted (or already counted: the same answer), or a bot answered exactly as a person.

    `pending`: the pledge asks for confirmation, so the signer is told to check their email, the
    same whether the address was new, waiting already, or counted long ago (no enumeration).
    """

    embedding: Embedding
    total: int  # the pledge's count to show
    name: str  # as the signer gave it, to thank them by; "" for none
    pending: bool = False


@dataclass(frozen=True)
class AskAgain:
    """Not counted yet: the form again, with the person's input, its errors and a fresh token."""

    embedding: Embedding
    form: SignForm
    message: str  # the sentence above the form; "" when the fields' own messages say it
    total: int
    fields_invalid: bool  # a field must be corrected (as opposed to pressing Sign again)


@dataclass(frozen=True)
class Refused:
    """Not counted, for a reason a person reads; may be shown inside the embedding's frames."""

    embedding: Embedding
    error: WidgetError


Outcome = Signed | AskAgain | Refused


class Rows(Protocol):
    """What signing reads: the catalog's cached rows and counts."""

    async def partner(self, partner_id: int) -> Partner | None: ...

    async def counts(self, pledge_id: int, partner_id: int | None = None) -> Counts: ...


class Written(Protocol):
    @property
    def created(self) -> bool: ...

    @property
    def total(self) -> int: ...

    @property
    def alone(self) -> bool: ...


class Writer(Protocol):
    """Where signatures go: answers once the signature is durable."""

    async def submit(self, signature: NewSignature) -> Written: ...


class Limiter(Protocol):
    def hit(self, key: str) -> int: ...

    def waiting(self, key: str) -> int: ...


class Signing:
    """Bot check, form-token age, minimum fill time, validation, the partner's limit, the write."""

    def __init__(
        self,
        *,
        settings: Settings,
        catalog: Rows,
        writer: Writer,
        tokens: Tokens,
        partner_limiter: Limiter,
        clock: Callable[[], float],
        timer: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._max_age = settings.form_token_hours * 3600
        self._min_fill = settings.min_fill_seconds
        self._direct_frame_origins = settings.direct_frame_origins
        self._catalog = catalog
        self._writer = writer
        self._tokens = tokens
        self._partner_limiter = partner_limiter
        self._clock = clock
        self._timer, self._sleep = timer, sleep
        self._write_seconds = 0.0  # the typical time a new signature's write takes
        # The last second formatted for storage: in a surge thousands of signatures share each.
        self._second = -1
        self._stamp = ""

    async def sign(
        self, pledge: Pledge, posted: Mapping[str, str], client_wait: int = 0, client_mark: str = ""
    ) -> Outcome:
        """The outcome of posting `posted` to `pledge`'s form.

        `client_wait` is the posting client's own rate limit, already counted by the caller:
        seconds to wait, 0 to go on. Raises the domain error when the form token cannot be
        read (forged, another pledge's, its partner gone); every refusal after that is `Refused`.
        `client_mark` is kept with the signature for the staff's abuse panel (models.NewSignature).
        """
        try:
            form, claim, embedding = await self._read(pledge, posted)
        except WidgetError:
            if client_wait:
                raise RateLimited(SLOW_DOWN, client_wait) from None
            raise
        # From here on a refusal is shown inside the partner's frame: with JavaScript off, one that
        # may not be framed there would leave the supporter looking at a blank, blocked frame.
        if client_wait:
            return Refused(embedding, RateLimited(SLOW_DOWN, client_wait))
        try:
            return await self._sign(embedding, form, claim, client_mark)
        except WidgetError as exc:
            return Refused(embedding, exc)

    async def _read(self, pledge: Pledge, posted: Mapping[str, str]) -> tuple[SignForm, FormClaim, Embedding]:
        """The posted form and what its form token says: the only source of attribution."""
        form = SignForm.from_post(posted)
        claim = self._tokens.read_form_token(form.form_token)
        if claim.pledge_id != pledge.id:
            raise Invalid(OTHER_PLEDGE)
        partner = None
        if claim.partner_id is not None:
            partner = signing_partner(claim.partner_id, claim.version, await self._catalog.partner(claim.partner_id))
        embedding = Embedding(
            pledge,
            partner,
            self._tokens.partner_token(partner) if partner else "",
            partner.origins if partner else self._direct_frame_origins,
            claim.origin,
        )
        return form, claim, embedding

    async def _sign(self, embedding: Embedding, form: SignForm, claim: FormClaim, client_mark: str = "") -> Outcome:
        """The checks a person can fail (bot, timing, fields, partner limit), then the write."""
        pledge, partner = embedding.pledge, embedding.partner
        if pledge.closed:  # closed by staff: refused with a sentence, inside the partner's frame
            raise NotAllowed(PLEDGE_CLOSED)
        now = self._clock()
        if form.is_bot:
            # Answer a bot exactly as a person, so it learns nothing; store nothing. A person's
            # thank-you counts their own signature, so the bot's shows the count one higher,
            # and comes when a person's would; where a person is asked to confirm, so is the bot.
            total = await self._total(pledge) + (0 if pledge.confirm_email else 1)
            await self._same_moment(self._timer(), created=False)
            return Signed(embedding, total, form.name, pending=pledge.confirm_email)
        # The lifetime counts from the first render, however often the form was asked again.
        if now - claim.born_at > self._max_age:
            return await self._again(embedding, form, claim, now, FORM_EXPIRED, new_life=True)
        age = now - claim.rendered_at
        # A form is stamped up to a tick after its render (`tick_after`), so "no minimum" must
        # not be `age < 0`: a script posting at once would be told to press Sign again.
        if self._min_fill > 0 and age < self._min_fill:
            return await self._again(embedding, form, claim, now, TOO_QUICK)
        if not form.validate():
            return await self._again(embedding, form, claim, now, "", fields_invalid=True)
        # The partner's budget pays only for signatures stored: posts of addresses that already
        # signed write nothing and must not spend it, or anyone could make a partner "busy".
        # Posts already being written when the budget runs out may each still store one.
        budget = f"partner:{claim.partner_id or 'direct'}"
        wait = self._partner_limiter.waiting(budget)
        if wait:
            raise RateLimited(PARTNER_BUSY, wait)

        started = self._timer()
        result = await self._writer.submit(
            NewSignature(
                pledge_id=pledge.id,
                partner_id=claim.partner_id,
                email=form.email,
                name=form.name,
                # A question the pledge does not ask is not stored, even from a hand-made post.
                occupation=form.occupation if "occupation" in pledge.optional_fields else "",
                organisation=form.organisation if "organisation" in pledge.optional_fields else "",
                opt_in_updates=form.opt_in_updates,
                opt_in_partner=form.opt_in_partner and partner is not None,
                origin=claim.origin,
                attribution=claim.attribution,
                created_at=self._utc_now(now),
                client_mark=client_mark,
                # Waits, uncounted, for its signer to confirm it from their mailbox.
                pending=pledge.confirm_email,
            )
        )
        if result.created:
            self._partner_limiter.hit(budget)
        if result.alone:
            await self._same_moment(started, result.created)
        # New or already signed: the same answer, so the form never reveals who has signed.
        return Signed(embedding, result.total, form.name, pending=pledge.confirm_email)

    async def _again(
        self,
        embedding: Embedding,
        form: SignForm,
        claim: FormClaim,
        now: float,
        message: str,
        fields_invalid: bool = False,
        new_life: bool = False,
    ) -> AskAgain:
        """The form again with a fresh token for the same claim.

        `new_life` only for an expired form: its new token is what reloading the page would
        give (its partner token and the key were just found current), and the supporter keeps
        their input. Any other second ask keeps the form's birth, so it is never renewed.
        """
        if claim.old_key:
            # Verified only by a retired key: signing its claims again under the current key
            # would let whoever holds the retired key mint forms that outlive the rotation.
            raise Invalid(FORM_OUT_OF_DATE)
        # The fresh token keeps the attribution, the partner token version and (but for an
        # expired form) the form's birth; its minimum fill time counts from now.
        fresh = FormClaim(
            claim.pledge_id,
            claim.partner_id,
            claim.origin,
            now,
            claim.attribution,
            version=claim.version,
            issued_at=now if new_life else claim.born_at,
        )
        form.form_token = self._tokens.form_token(fresh)
        return AskAgain(embedding, form, message, await self._total(embedding.pledge), fields_invalid)

    async def _same_moment(self, started: float, created: bool) -> None:
        """Hold the answer until the moment a new signature's would come, new or not.

        A repeat signature writes nothing, so alone in its batch it would be answered sooner and
        a single post's time would tell whether an address had signed (SECURITY.md, "Ballot
        stuffing and bots"). Both are held to the same moment after the write began, from the
        typical time of new signatures written alone: twice it, but never more than
        MAX_HOLD_SECONDS past it. Called only for a signature its batch held alone (or a bot's,
        answered as one): in a shared batch the commit's time is everyone's.
        """
        elapsed = self._timer() - started
        if created:
            # The first write sets the average; from nothing it would creep up over many writes.
            weight = WRITE_TIME_WEIGHT if self._write_seconds else 1.0
            self._write_seconds += weight * (elapsed - self._write_seconds)
        typical = self._write_seconds
        moment = typical + min((ANSWER_HELD_FACTOR - 1) * typical, MAX_HOLD_SECONDS)
        remaining = moment - elapsed
        if remaining > 0:
            await self._sleep(remaining)

    async def _total(self, pledge: Pledge) -> int:
        return (await self._catalog.counts(pledge.id)).total

    def _utc_now(self, now: float) -> str:
        """`now`, to the second, as stored with each signature."""
        second = int(now)
        if second != self._second:
            self._second, self._stamp = second, iso_utc(second)
        return self._stamp
