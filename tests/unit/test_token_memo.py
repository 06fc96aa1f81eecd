"""Remembered tokens save the signature check, never a decision: a remembered partner token is
still judged against the partner's current row, a remembered form token's age on every post, and
only tokens whose signature verified are remembered, in a bounded memo."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_signing import PARTNER, PLEDGE, World, make_world
from widget_server.core.attribution import credited_partner
from widget_server.core.models import Partner
from widget_server.errors import Invalid, TokenError
from widget_server.messages import FORM_EXPIRED, REVOKED, ROTATED, TAMPERED, TOO_QUICK
from widget_server.security.tokens import FormClaim, Tokens
from widget_server.services.signing import AskAgain, Signed

KEYS = ["unit-test-token-key-of-enough-length-0123456789"]


def rotated(partner: Partner, **changes: Any) -> Partner:
    values = {**partner.__dict__, **changes}
    return Partner(**values)


def test_a_remembered_partner_token_is_refused_once_its_partner_is_rotated_or_revoked() -> None:
    tokens = Tokens(KEYS)
    token = tokens.partner_token(PARTNER)
    claim = tokens.read_partner_token(token)
    assert tokens.read_partner_token(token) is claim  # remembered
    assert credited_partner(PLEDGE, claim, PARTNER) == PARTNER
    for row, message in ((rotated(PARTNER, token_version=2), ROTATED), (rotated(PARTNER, revoked=True), REVOKED)):
        with pytest.raises(TokenError) as refused:
            credited_partner(PLEDGE, tokens.read_partner_token(token), row)
        assert refused.value.message == message
    # And back: the row, not the memory, decides.
    assert credited_partner(PLEDGE, tokens.read_partner_token(token), PARTNER) == PARTNER


def test_a_rotated_partners_new_token_is_a_new_entry() -> None:
    tokens = Tokens(KEYS)
    old = tokens.partner_token(PARTNER)
    new = tokens.partner_token(rotated(PARTNER, token_version=2))
    assert old != new
    assert tokens.read_partner_token(new).version == 2
    assert tokens.read_partner_token(old).version == 1


CHANGES = {
    "last character": lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
    "prefixed": lambda t: "x" + t,
    "cut short": lambda t: t[:10],
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_a_changed_partner_token_is_checked_afresh_and_never_remembered(change: Any) -> None:
    tokens = Tokens(KEYS)
    good = tokens.partner_token(PARTNER)
    tokens.read_partner_token(good)
    for _ in range(2):
        with pytest.raises(TokenError) as refused:
            tokens.read_partner_token(change(good))
        assert refused.value.message == TAMPERED
    assert len(tokens._verified) == 1


def test_another_keys_tokens_are_refused() -> None:
    theirs = Tokens(["someone-elses-key-of-enough-length-0123456789"])
    ours = Tokens(KEYS)
    with pytest.raises(TokenError):
        ours.read_partner_token(theirs.partner_token(PARTNER))
    with pytest.raises(Invalid):
        ours.read_form_token(theirs.form_token(FormClaim(1, None, "", 0.0, {})))
    assert len(ours._verified) == len(ours._verified_forms) == 0


def test_a_remembered_form_tokens_age_is_judged_on_every_post() -> None:
    world: World = make_world()
    token = world.form()
    # Too soon, twice with the same (now remembered) token, then old enough.
    first = world.post(token, wait=0.5, email="a@example.org")
    second = world.post(token, wait=0.5, email="a@example.org")
    assert isinstance(first, AskAgain) and isinstance(second, AskAgain)
    assert first.message == second.message == TOO_QUICK
    assert token in world.tokens._verified_forms
    assert isinstance(world.post(token, wait=2.0, email="a@example.org"), Signed)
    # Never accepted once expired, though it verified and was remembered.
    world.clock.advance(6 * 3600)
    expired = world.post(token, email="b@example.org")
    assert isinstance(expired, AskAgain) and expired.message == FORM_EXPIRED
    assert [s.email for s in world.writer.stored] == ["a@example.org"]


def test_a_remembered_claim_cannot_be_changed_by_its_users() -> None:
    tokens = Tokens(KEYS)
    token = tokens.form_token(FormClaim(1, 7, "https://riverside.example", 0.0, {"source": "news"}))
    claim = tokens.read_form_token(token)
    with pytest.raises(TypeError):
        claim.attribution["source"] = "forged"  # type: ignore[index]
    assert tokens.read_form_token(token).attribution == {"source": "news"}


class SmallTokens(Tokens):
    MAX_KEPT = 5
    MAX_KEPT_BYTES = 8 * 1024


def test_the_token_memos_are_bounded_in_entries_and_bytes() -> None:
    tokens = SmallTokens(KEYS)
    for n in range(40):
        # Campaign tags come from the partner page's URL: anyone can make many long ones.
        claim = FormClaim(1, 7, "https://riverside.example", float(n), {"utm_content": f"{n}" + "x" * 90})
        tokens.read_form_token(tokens.form_token(claim))
        tokens.page_form_token(("k", n), 1, lambda claim=claim: claim)  # type: ignore[misc]
        tokens.read_partner_token(tokens.partner_token(rotated(PARTNER, id=n)))
    for memo in (tokens._verified, tokens._verified_forms, tokens._minted, tokens._page_forms):
        assert 0 < len(memo) <= 5 and memo.bytes <= 8 * 1024


def test_page_form_tokens_are_shared_within_a_tick_and_forgotten_after_it() -> None:
    tokens = Tokens(KEYS)
    made: list[int] = []

    def claim_at(tick: int) -> FormClaim:
        made.append(tick)
        return FormClaim(1, 7, "https://riverside.example", tick / 10, {})

    first = tokens.page_form_token("page", 100, lambda: claim_at(100))
    assert tokens.page_form_token("page", 100, lambda: claim_at(100)) == first
    later = tokens.page_form_token("page", 101, lambda: claim_at(101))
    assert later != first and made == [100, 101]
    assert tokens.read_form_token(later).rendered_at == 10.1
    assert len(tokens._page_forms) == 1
