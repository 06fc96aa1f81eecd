"""The signing use case: what a supporter posted becomes a signature, a second ask, or a refusal.

`Signing.sign` takes the pledge and the posted fields and answers with an outcome: `Signed`
(stored, or a bot answered exactly as a person), `AskAgain` (a sentence and the form, input kept,
with a fresh form token) or `Refused` (a domain error to show inside the partner's frames).
A post whose form token cannot be read is refused by raising the domain error: nothing says
where it may be shown. It knows nothing of HTTP; the web edge parses the post and renders the
outcome.

Forms are stamped in ticks of a tenth of a second (`tick_after`), rounded up, so forms opened in
the same tick can share a form token; SECURITY.md ("Forged attribution") says why that is safe.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from widget_server.core.attribution import Embedding, signing_partner
from widget_server.core.models import Counts, NewSignature, Partner, Pledge
from widget_server.core.signform import SignForm
from widget_server.core.times import iso_utc
from widget_server.errors import Invalid, NotAllowed, RateLimited, WidgetError
from widget_server.messages import FORM_EXPIRED, OTHER_PLEDGE, PARTNER_BUSY, PLEDGE_CLOSED, SLOW_DOWN, TOO_QUICK
from widget_server.security.tokens import FormClaim, Tokens
from widget_server.settings import Settings

TICKS_PER_SECOND = 10


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
    """Counted (or already counted: the same answer), or a bot answered exactly as a person."""

    embedding: Embedding
    total: int  # the pledge's count to show
    name: str  # as the signer gave it, to thank them by; "" for none


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
    def total(self) -> int: ...


class Writer(Protocol):
    """Where signatures go: answers once the signature is durable."""

    async def submit(self, signature: NewSignature) -> Written: ...


class Limiter(Protocol):
    def hit(self, key: str) -> int: ...


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
    ) -> None:
        self._max_age = settings.form_token_hours * 3600
        self._min_fill = settings.min_fill_seconds
        self._direct_frame_origins = settings.direct_frame_origins
        self._catalog = catalog
        self._writer = writer
        self._tokens = tokens
        self._partner_limiter = partner_limiter
        self._clock = clock
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
            partner = signing_partner(claim.partner_id, await self._catalog.partner(claim.partner_id))
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
            # Answer a bot exactly as a person, so it learns nothing; store nothing.
            return Signed(embedding, await self._total(pledge), form.name)
        age = now - claim.rendered_at
        if age > self._max_age:
            return await self._again(embedding, form, claim, now, FORM_EXPIRED)
        # A form is stamped up to a tick after its render (`tick_after`), so "no minimum" must
        # not be `age < 0`: a script posting at once would be told to press Sign again.
        if self._min_fill > 0 and age < self._min_fill:
            return await self._again(embedding, form, claim, now, TOO_QUICK)
        if not form.validate():
            return await self._again(embedding, form, claim, now, "", fields_invalid=True)
        wait = self._partner_limiter.hit(f"partner:{claim.partner_id or 'direct'}")
        if wait:
            raise RateLimited(PARTNER_BUSY, wait)

        result = await self._writer.submit(
            NewSignature(
                pledge_id=pledge.id,
                partner_id=claim.partner_id,
                email=form.email,
                name=form.name,
                occupation=form.occupation,
                organisation=form.organisation,
                opt_in_updates=form.opt_in_updates,
                opt_in_partner=form.opt_in_partner and partner is not None,
                origin=claim.origin,
                attribution=claim.attribution,
                created_at=self._utc_now(now),
                client_mark=client_mark,
            )
        )
        # New or already signed: the same answer, so the form never reveals who has signed.
        return Signed(embedding, result.total, form.name)

    async def _again(
        self,
        embedding: Embedding,
        form: SignForm,
        claim: FormClaim,
        now: float,
        message: str,
        fields_invalid: bool = False,
    ) -> AskAgain:
        # The fresh token keeps the attribution and is timed from this answer, exactly.
        fresh = FormClaim(claim.pledge_id, claim.partner_id, claim.origin, now, claim.attribution)
        form.form_token = self._tokens.form_token(fresh)
        return AskAgain(embedding, form, message, await self._total(embedding.pledge), fields_invalid)

    async def _total(self, pledge: Pledge) -> int:
        return (await self._catalog.counts(pledge.id)).total

    def _utc_now(self, now: float) -> str:
        """`now`, to the second, as stored with each signature."""
        second = int(now)
        if second != self._second:
            self._second, self._stamp = second, iso_utc(second)
        return self._stamp
