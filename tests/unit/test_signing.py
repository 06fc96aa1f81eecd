"""The signing use case on its own: each outcome (signed, asked again, refused) from what was
posted, with real tokens and limits, an in-memory catalog and writer, and a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import FakeClock
from widget_server.core.models import Counts, NewSignature, Partner, Pledge
from widget_server.core.times import iso_utc
from widget_server.errors import Invalid, NotAllowed, RateLimited, TokenError, Unavailable
from widget_server.messages import (
    FORM_BAD,
    FORM_EXPIRED,
    OTHER_PLEDGE,
    PARTNER_BUSY,
    RESTARTING,
    REVOKED,
    SLOW_DOWN,
    TOO_QUICK,
)
from widget_server.security.ratelimit import RateLimiter
from widget_server.security.tokens import FormClaim, Tokens
from widget_server.services.signing import (
    TICKS_PER_SECOND,
    AskAgain,
    Outcome,
    Refused,
    Signed,
    Signing,
    tick_after,
)
from widget_server.settings import Settings

PLEDGE = Pledge(1, "data-firewall", "Keep our data safe", "<p>Keep it.</p>", 1000, None, None, 0)
ORIGIN = "https://riverside.example"
PARTNER = Partner(7, 1, "Riverside", (ORIGIN,), 1, False, 0)
DIRECT_ORIGINS = ("https://campaign.example",)
KEYS = ["unit-test-signing-key-of-enough-length-0123456789"]


@dataclass
class Rows:
    """The catalog's answers: partner rows by id and the pledge's total."""

    partners: dict[int, Partner] = field(default_factory=lambda: {PARTNER.id: PARTNER})
    total: int = 41

    async def partner(self, partner_id: int) -> Partner | None:
        return self.partners.get(partner_id)

    async def counts(self, pledge_id: int, partner_id: int | None = None) -> Counts:
        return Counts(self.total)


@dataclass(frozen=True)
class Written:
    created: bool
    total: int
    alone: bool = True


@dataclass
class Writer:
    stored: list[NewSignature] = field(default_factory=list)
    failure: Exception | None = None

    async def submit(self, signature: NewSignature) -> Written:
        if self.failure is not None:
            raise self.failure
        self.stored.append(signature)
        return Written(True, 42)


@dataclass
class World:
    signing: Signing
    tokens: Tokens
    clock: FakeClock
    rows: Rows
    writer: Writer

    def form(self, partner_id: int | None = PARTNER.id, pledge_id: int = PLEDGE.id, **attribution: str) -> str:
        """A form token as the embed page mints it, rendered now."""
        origin = ORIGIN if partner_id is not None else ""
        version = PARTNER.token_version if partner_id is not None else 0
        claim = FormClaim(pledge_id, partner_id, origin, self.clock.now, attribution, version=version)
        return self.tokens.form_token(claim)

    def post(self, token: str, wait: float = 5.0, client_wait: int = 0, **fields: str) -> Outcome:
        """Post the form `wait` seconds later, as a person would."""
        self.clock.advance(wait)
        posted: Mapping[str, str] = {"name": "Ana Teacher", "email": "ana@example.org", "form_token": token, **fields}
        return asyncio.run(self.signing.sign(PLEDGE, posted, client_wait=client_wait))


def make_world(partner_rate: tuple[int, float] | None = None, **overrides: object) -> World:
    clock = FakeClock()
    tokens = Tokens(KEYS)
    rows, writer = Rows(), Writer()
    signing = Signing(
        settings=Settings(direct_frame_origins=DIRECT_ORIGINS, **overrides),  # type: ignore[arg-type]
        catalog=rows,
        writer=writer,
        tokens=tokens,
        partner_limiter=RateLimiter(partner_rate, clock),
        clock=clock,
    )
    return World(signing, tokens, clock, rows, writer)


@pytest.fixture
def world() -> World:
    return make_world()


def test_a_valid_post_is_stored_with_the_form_tokens_attribution_and_thanked(world: World) -> None:
    token = world.form(utm_source="newsletter")
    # Posted attribution fields are not the token's: they change nothing.
    outcome = world.post(token, opt_in_partner="yes", partner="99", origin="https://evil.example", source="x")
    assert isinstance(outcome, Signed)
    assert (outcome.total, outcome.name) == (42, "Ana Teacher")
    assert outcome.embedding.partner == PARTNER
    assert outcome.embedding.frame_ancestors == PARTNER.origins
    assert outcome.embedding.parent_origin == ORIGIN
    assert outcome.embedding.partner_token == world.tokens.partner_token(PARTNER)  # for the share link
    [stored] = world.writer.stored
    assert (stored.pledge_id, stored.partner_id, stored.origin) == (PLEDGE.id, PARTNER.id, ORIGIN)
    assert dict(stored.attribution) == {"utm_source": "newsletter"}
    assert (stored.email, stored.name, stored.opt_in_partner, stored.opt_in_updates) == (
        "ana@example.org",
        "Ana Teacher",
        True,
        False,
    )
    assert stored.created_at == iso_utc(world.clock.now)


def test_a_direct_form_is_framed_by_the_campaigns_sites_and_asks_no_partner_consent(world: World) -> None:
    outcome = world.post(world.form(partner_id=None), opt_in_partner="yes")
    assert isinstance(outcome, Signed)
    assert outcome.embedding.partner is None and outcome.embedding.partner_token == ""
    assert outcome.embedding.frame_ancestors == DIRECT_ORIGINS
    assert world.writer.stored[0].opt_in_partner is False


def test_a_bot_is_thanked_like_a_person_and_nothing_is_stored(world: World) -> None:
    outcome = world.post(world.form(), website="http://spam.example")
    # Counted as a person's signature would be, so the count it is shown does not give it away.
    assert isinstance(outcome, Signed) and outcome.total == world.rows.total + 1
    assert world.writer.stored == []


def test_a_form_sent_too_soon_is_asked_again_with_input_kept_and_a_token_timed_now(world: World) -> None:
    token = world.form(utm_source="newsletter")
    outcome = world.post(token, wait=1.0, occupation="Nurse")
    assert isinstance(outcome, AskAgain)
    assert (outcome.message, outcome.fields_invalid, outcome.total) == (TOO_QUICK, False, world.rows.total)
    assert (outcome.form.name, outcome.form.occupation) == ("Ana Teacher", "Nurse")
    fresh = world.tokens.read_form_token(outcome.form.form_token)
    assert fresh.rendered_at == world.clock.now
    assert (fresh.partner_id, fresh.origin) == (PARTNER.id, ORIGIN)
    assert dict(fresh.attribution) == {"utm_source": "newsletter"}
    assert world.writer.stored == []


def test_an_expired_form_is_asked_again(world: World) -> None:
    outcome = world.post(world.form(), wait=6 * 3600 + 1)
    assert isinstance(outcome, AskAgain) and outcome.message == FORM_EXPIRED
    assert world.writer.stored == []


def test_the_form_lifetime_and_minimum_fill_time_come_from_the_settings() -> None:
    world = make_world(form_token_hours=1.0, min_fill_seconds=10.0)
    outcome = world.post(world.form(), wait=5.0)
    assert isinstance(outcome, AskAgain) and outcome.message == TOO_QUICK
    outcome = world.post(world.form(), wait=3601.0)
    assert isinstance(outcome, AskAgain) and outcome.message == FORM_EXPIRED


def test_no_minimum_fill_time_accepts_a_form_stamped_up_to_a_tick_ahead() -> None:
    world = make_world(min_fill_seconds=0.0)
    token = world.tokens.form_token(FormClaim(PLEDGE.id, None, "", world.clock.now + 0.1, {}))
    assert isinstance(world.post(token, wait=0.0), Signed)


def test_invalid_fields_are_asked_again_with_each_fields_message(world: World) -> None:
    outcome = world.post(world.form(), email="not an address", name="")
    assert isinstance(outcome, AskAgain)
    assert outcome.fields_invalid and outcome.message == ""
    assert set(outcome.form.errors) == {"name", "email"}
    assert outcome.form.form_token and world.writer.stored == []


def test_the_partners_limit_refuses_inside_the_partners_frames() -> None:
    world = make_world(partner_rate=(1, 60.0))
    assert isinstance(world.post(world.form(), email="one@example.org"), Signed)
    outcome = world.post(world.form(), email="two@example.org")
    assert isinstance(outcome, Refused)
    assert isinstance(outcome.error, RateLimited) and outcome.error.message == PARTNER_BUSY
    assert outcome.error.retry_after > 0
    assert outcome.embedding.frame_ancestors == PARTNER.origins
    assert len(world.writer.stored) == 1


def test_the_clients_limit_refuses_inside_the_frames_once_the_token_is_read(world: World) -> None:
    outcome = world.post(world.form(), client_wait=30)
    assert isinstance(outcome, Refused) and outcome.embedding.frame_ancestors == PARTNER.origins
    assert isinstance(outcome.error, RateLimited)
    assert (outcome.error.message, outcome.error.retry_after) == (SLOW_DOWN, 30)
    # A token that cannot be read says nowhere the refusal may be shown: it is raised.
    with pytest.raises(RateLimited) as limited:
        world.post("forged", client_wait=30)
    assert limited.value.message == SLOW_DOWN
    assert world.writer.stored == []


@pytest.mark.parametrize("token", ["", "forged", "a.b.c"])
def test_a_forged_form_token_is_refused_by_raising(world: World, token: str) -> None:
    with pytest.raises(Invalid) as refused:
        world.post(token)
    assert refused.value.message == FORM_BAD


def test_another_pledges_form_is_refused(world: World) -> None:
    with pytest.raises(Invalid) as refused:
        world.post(world.form(pledge_id=2))
    assert refused.value.message == OTHER_PLEDGE


def test_a_revoked_partners_open_form_stops_signing(world: World) -> None:
    token = world.form()
    world.rows.partners[PARTNER.id] = Partner(7, 1, "Riverside", (ORIGIN,), 1, True, 0)
    with pytest.raises(TokenError) as revoked:
        world.post(token)
    assert (revoked.value.message, revoked.value.origins) == (REVOKED, (ORIGIN,))
    del world.rows.partners[PARTNER.id]
    with pytest.raises(NotAllowed):
        world.post(token)
    assert world.writer.stored == []


def test_a_write_that_fails_is_refused_inside_the_frames(world: World) -> None:
    world.writer.failure = Unavailable(RESTARTING)
    outcome = world.post(world.form())
    assert isinstance(outcome, Refused) and outcome.error is world.writer.failure
    assert outcome.embedding.frame_ancestors == PARTNER.origins


def test_an_unexpected_error_is_not_swallowed(world: World) -> None:
    world.writer.failure = RuntimeError("a bug")
    with pytest.raises(RuntimeError):
        world.post(world.form())


@settings(database=None)
@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_a_forms_stamp_is_never_before_its_render_and_at_most_a_tick_after(now: float) -> None:
    tick = tick_after(now)
    assert tick / TICKS_PER_SECOND >= now
    assert (tick - 1) / TICKS_PER_SECOND < now
