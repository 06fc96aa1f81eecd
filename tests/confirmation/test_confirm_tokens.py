"""Confirmation tokens are single-purpose: their own salt, so a form token or a partner token is
never accepted as one, nor one as either of them; a fallback key still verifies them."""

from __future__ import annotations

import pytest

from widget_server.core.models import Partner
from widget_server.errors import Invalid, TokenError
from widget_server.security.tokens import ConfirmClaim, FormClaim, Tokens

KEY, OLD_KEY = "k" * 40, "o" * 40
CLAIM = ConfirmClaim(pending_id=7, pledge_id=3, signed_at=1_790_000_000.0)
PARTNER = Partner(
    id=7,
    pledge_id=3,
    name="Riverside",
    origins=("https://riverside.example",),
    token_version=1,
    revoked=False,
    signature_count=0,
)


def test_a_token_gives_back_its_claim() -> None:
    tokens = Tokens([KEY])
    token = tokens.confirm_token(CLAIM)
    assert tokens.read_confirm_token(token) == CLAIM
    assert len(token) < 100 and all(c.isalnum() or c in "-_." for c in token)


def test_other_kinds_of_token_are_never_a_confirmation_token() -> None:
    tokens = Tokens([KEY])
    form = tokens.form_token(FormClaim(pledge_id=3, partner_id=7, origin="", rendered_at=1.0, attribution={}))
    for other in (form, tokens.partner_token(PARTNER)):
        with pytest.raises(Invalid):
            tokens.read_confirm_token(other)


def test_a_confirmation_token_is_never_another_kind() -> None:
    tokens = Tokens([KEY])
    token = tokens.confirm_token(CLAIM)
    with pytest.raises(Invalid):
        tokens.read_form_token(token)
    with pytest.raises(TokenError):
        tokens.read_partner_token(token)


def test_a_token_signed_with_another_key_or_changed_is_refused() -> None:
    token = Tokens(["x" * 40]).confirm_token(CLAIM)
    with pytest.raises(Invalid):
        Tokens([KEY]).read_confirm_token(token)
    good = Tokens([KEY]).confirm_token(CLAIM)
    payload, signature = good.split(".")
    for forged in (payload + "." + signature[:-2] + "AA", payload + "=." + signature, good + "=", "", "." * 3):
        with pytest.raises(Invalid):
            Tokens([KEY]).read_confirm_token(forged)


def test_a_link_mailed_before_a_key_rotation_still_works() -> None:
    token = Tokens([OLD_KEY]).confirm_token(CLAIM)
    assert Tokens([OLD_KEY, KEY]).read_confirm_token(token) == CLAIM
