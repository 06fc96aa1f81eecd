"""The short cuts of email and domain normalisation give the slow path's answer wherever they are
taken, and one mailbox has one spelling whatever way it was typed."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from widget_server.core.origins import _ascii_domain_slowly, ascii_domain
from widget_server.core.signform import _canonical_email, clean_text, email_problem, normalise_email

# Examples are generated afresh each run and none is saved to disk.
PROPERTY = settings(max_examples=500, database=None, suppress_health_check=[HealthCheck.too_slow])

# Labels built from the pieces that decide each path: case, hyphens in every place (the hyphen
# pair in third and fourth place, the "xn--" prefix with and without valid Punycode), digits,
# characters a host may not hold, and empty labels.
_PIECES = ["a", "B", "z", "0", "9", "-", "--", "xn--", "XN--", "bcher-kva", "fa-hia", "_", " ", "%", "."]
label = st.lists(st.sampled_from(_PIECES), max_size=6).map("".join)
domain = st.lists(label, min_size=1, max_size=4).map(".".join)
printable = st.text(alphabet=string.printable, max_size=40)
email = st.tuples(printable, st.sampled_from(["@", "@@", ""]), domain).map("".join)


@PROPERTY
@given(st.one_of(domain, printable, st.text(alphabet="aZ09-._xn", max_size=300)))
@example("r2---sn-abc.example")
@example("xn--bcher-kva.example")
@example("xn---bbk.example")
@example("a" * 63 + ".example")
@example("a" * 64 + ".example")
def test_the_ascii_short_cut_of_domains_gives_the_slow_paths_answer(name: str) -> None:
    assert ascii_domain(name) == _ascii_domain_slowly(name)


@PROPERTY
@given(st.one_of(email, printable))
@example("Ana@XN--BCHER-KVA.Example")
@example("  ANA@Example.ORG ")
@example("ana@ab--cd.example")
@example("ana@xn--fa-hia.de")
def test_the_ascii_short_cut_of_emails_gives_the_slow_paths_answer(text: str) -> None:
    assert normalise_email(text) == _canonical_email(clean_text(text))


@PROPERTY
@given(st.one_of(email, st.text(max_size=60)))
def test_normalising_twice_changes_nothing(text: str) -> None:
    once = normalise_email(text)
    assert normalise_email(once) == once


SPELLINGS_OF_ONE_MAILBOX = [
    "ana@bücher.example",
    "Ana@BÜCHER.Example",
    "ana@bu\u0308cher.example",  # decomposed ü
    "ana@xn--bcher-kva.example",  # the A-label
    "ana@XN--BCHER-KVA.EXAMPLE",
    "ana@ｂüｃｈｅｒ．ｅｘａｍｐｌｅ",  # full-width letters and dot
    "ana@bücher\u3002example",  # ideographic full stop
    "ana@bücher\uff61example",  # half-width ideographic full stop
    "ana@bücher\ufe0f.example",  # variation selector
    "ana@bü\u00adcher.example",  # soft hyphen
    "ana@bü\U000e0100cher.example",  # variation selector supplement
    "ana\ufe0f@bücher.example",  # an ignorable in the local part too
    "\u200bana@bücher.example\u2060",
]


def test_every_spelling_of_one_mailbox_normalises_to_one_accepted_address() -> None:
    spelled = {normalise_email(text) for text in SPELLINGS_OF_ONE_MAILBOX}
    assert spelled == {"ana@bücher.example"}
    assert email_problem("ana@bücher.example") is None
