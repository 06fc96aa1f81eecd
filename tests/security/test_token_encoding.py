"""Issue 10, item 10: one token, one spelling.

base64 decoders are lenient: they accept padding, the other alphabet, characters they skip and
spare bits that decode to the same bytes. Each such spelling of a genuine token would be read as
the token itself and remembered as another entry. Only the spelling we mint is accepted, before
any memo is consulted, and tokens longer than any we mint are refused unread.
"""

from __future__ import annotations

import pytest
from itsdangerous.encoding import base64_decode

from tests.conftest import Signer
from tests.security.conftest import SLUG, unescaped
from widget_server.errors import Invalid, TokenError
from widget_server.messages import FORM_BAD, TAMPERED
from widget_server.security.tokens import MAX_TOKEN_CHARS, FormClaim, Tokens, canonical

KEYS = ["a-signing-key-of-at-least-32-bytes!"]
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _spare_bits_changed(token: str) -> str:
    """The same bytes, spelt with different spare bits in the signature's last character.

    A 32-byte signature is 43 characters: 258 bits, of which the last two are spare.
    """
    last = ALPHABET.index(token[-1])
    return token[:-1] + ALPHABET[last ^ 1]


def variants(token: str) -> dict[str, str]:
    payload, signature = token.rsplit(".", 1)
    middle = len(signature) // 2
    found = {
        "padded": token + "=",
        "other alphabet": token.replace("-", "+").replace("_", "/"),
        "non-ascii inserted": payload + "." + signature[:middle] + "\u00e9" + signature[middle:],
        "space inserted": payload + "." + signature[:middle] + " " + signature[middle:],
        "spare bits": _spare_bits_changed(token),
    }
    # A token with no "-" or "_" is spelt the same in both alphabets.
    return {name: variant for name, variant in found.items() if variant != token}


def test_only_the_minted_spelling_of_a_form_token_is_read() -> None:
    tokens = Tokens(KEYS)
    token = tokens.form_token(FormClaim(1, 7, "https://riverside.example", 100.0, {"source": "news"}, version=1))
    assert canonical(token)
    assert tokens.read_form_token(token).partner_id == 7
    for name, variant in variants(token).items():
        assert not canonical(variant), name
        with pytest.raises(Invalid) as refused:
            tokens.read_form_token(variant)
        assert refused.value.message == FORM_BAD, name
    assert len(tokens._verified_forms) == 1  # one token, one entry, however it was respelt


def test_spare_bits_alone_decode_to_the_same_signature() -> None:
    """The spare-bits variant is a real alternative spelling of the same signature."""
    token = Tokens(KEYS).form_token(FormClaim(1, None, "", 100.0, {}))
    signature, respelt = token.rsplit(".", 1)[1], _spare_bits_changed(token).rsplit(".", 1)[1]
    assert signature != respelt and base64_decode(signature) == base64_decode(respelt)


def test_only_the_minted_spelling_of_a_partner_token_is_read(settings, signer: Signer) -> None:
    tokens = Tokens(settings.signing_keys())
    assert tokens.read_partner_token(signer.token).version >= 1
    for name, variant in variants(signer.token).items():
        with pytest.raises(TokenError):
            tokens.read_partner_token(variant)
        # And through the server: the embed page refuses it with the tampered sentence.
        page = signer.client.get(f"/embed/{SLUG}", params={"token": variant})
        assert page.status_code == 403, name
        assert unescaped(TAMPERED) in unescaped(page.text), name
    assert len(tokens._verified) == 1


def test_tokens_longer_than_any_we_mint_are_refused_unread() -> None:
    tokens = Tokens(KEYS)
    # The longest form token we can mint: every attribution parameter at its cap, astral text.
    longest = tokens.form_token(
        FormClaim(
            2**40,
            2**40,
            "https://" + "a" * 250 + ":65535",
            1e10,
            {k: "\U0001f600" * 100 for k in ("source", "utm_source", "utm_medium", "utm_campaign", "utm_term")},
            version=10**9,
        )
    )
    assert len(longest) < MAX_TOKEN_CHARS and tokens.read_form_token(longest).partner_id == 2**40
    long_junk = "A" * MAX_TOKEN_CHARS + "." + "A" * 43
    assert not canonical(long_junk)
    with pytest.raises(Invalid):
        tokens.read_form_token(long_junk)
    with pytest.raises(TokenError):
        tokens.read_partner_token(long_junk)
