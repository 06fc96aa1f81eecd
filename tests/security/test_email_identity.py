"""SECURITY.md, threat 3: one mailbox, one signature. However its domain is spelled (upper case,
full-width letters, ideographic or full-width dots, variation selectors and other ignorable code
points, decomposed letters, the A-label or the U-label), an address signs once, and `person
export` and `person erase` find that one signature by any of those spellings. A domain that does
not map under IDNA 2008 / UTS #46 is refused with a sentence."""

from __future__ import annotations

import functools

import pytest

from tests.conftest import Signer, on_db, rows, stats
from widget_server.messages import EMAIL_DOMAIN
from widget_server.services import people
from widget_server.settings import Settings

STORED = "ana@bücher.example"
SPELLINGS = [
    "ana@bücher.example",
    "ANA@BÜCHER.EXAMPLE",
    "ana@bu\u0308cher.example",  # ü decomposed into u and a combining diaeresis
    "ana@xn--bcher-kva.example",  # the A-label browsers and DNS use
    "ana@XN--BCHER-KVA.example",
    "ana@ｂüｃｈｅｒ．ｅｘａｍｐｌｅ",  # full-width letters and full-width full stop
    "ana@bücher\u3002example",  # ideographic full stop
    "ana@bücher\uff61example",  # half-width ideographic full stop
    "ana@büche\ufe0fr.example",  # variation selector
    "ana@bü\u00adcher.example",  # soft hyphen
    "ana@bü\U000e0100cher.example",  # variation selector supplement
    "ana@bücher.\u034fexample",  # combining grapheme joiner
    "ana\ufe0f@bücher.example",  # and in the local part
]


def test_one_mailbox_signs_once_however_its_domain_is_spelled(settings: Settings, signer: Signer) -> None:
    for spelling in SPELLINGS:
        answer = signer.sign(json=True, email=spelling)
        assert answer.status_code == 200, (spelling, answer.text)
        assert answer.json() == {"status": "signed", "total": 1}, spelling
    assert [row["email"] for row in rows(settings)] == [STORED]
    assert stats(settings)["total"] == 1


@pytest.mark.parametrize("signed_as", [SPELLINGS[3], SPELLINGS[5], SPELLINGS[8]])
def test_person_export_and_erase_find_the_signature_by_any_spelling(
    settings: Settings, signer: Signer, signed_as: str
) -> None:
    assert signer.sign(json=True, email=signed_as).status_code == 200
    for spelling in SPELLINGS:
        found = on_db(settings, functools.partial(people.person_data, email=spelling))
        assert [signature["email"] for signature in found] == [STORED], spelling
    assert on_db(settings, lambda store: people.erase_person(store, "ana@ＢÜＣＨＥＲ。example")).signatures == 1
    assert rows(settings) == []
    assert stats(settings)["total"] == 0


@pytest.mark.parametrize(
    "email",
    [
        "ana@\u2603.example",  # a snowman: a domain under IDNA 2003, none under IDNA 2008
        "ana@ex\u200dample.org",  # a zero-width joiner where no script needs one
        "ana@xn---bbk.example",  # a Punycode spelling that is not the canonical one
        "ana@xn--abc.example",  # not Punycode at all
        "ana@exam\u200eple.org",  # a left-to-right mark
    ],
)
def test_a_domain_that_does_not_map_is_refused_with_a_sentence(settings: Settings, signer: Signer, email: str) -> None:
    """Only international names get this sentence; a plain typo ('ana@exa mple.org') gets the usual one."""
    answer = signer.sign(json=True, email=email)
    assert answer.status_code == 400
    assert answer.json()["errors"] == {"email": EMAIL_DOMAIN}
    page = signer.sign(email=email)
    assert page.status_code == 400
    assert "The part after the @ is not a domain that email can be sent to." in page.text
    assert rows(settings) == []


def test_a_refused_form_shows_the_address_as_it_was_typed(signer: Signer) -> None:
    """Sent back to be corrected, the address is the person's own spelling, not the stored one."""
    page = signer.sign(name="", email="Ana@Bücher.Example")
    assert page.status_code == 400
    assert 'value="Ana@Bücher.Example"' in page.text
