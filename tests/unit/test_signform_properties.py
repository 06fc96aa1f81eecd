"""The short cuts of email and domain normalisation give the slow path's answer wherever they are
taken, and one mailbox has one spelling whatever way it was typed."""

from __future__ import annotations

import string
from collections.abc import Mapping

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from widget_server.core.origins import _ascii_domain_slowly, ascii_domain
from widget_server.core.signform import SignForm, _canonical_email, clean_text, email_problem, normalise_email

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
@example("a." * 126 + "ab")
@example("example.org\n")
@example("0\n")
def test_the_ascii_short_cut_of_domains_gives_the_slow_paths_answer(name: str) -> None:
    assert ascii_domain(name) == _ascii_domain_slowly(name)


def test_a_final_newline_is_not_part_of_a_host_name() -> None:
    assert ascii_domain("example.org\n") is None
    assert ascii_domain("example.org") == "example.org"


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


def test_cleaning_twice_is_not_always_cleaning_once() -> None:
    # Removing a zero-width space can bring a letter and its accent together, which NFC then
    # composes: so `validate` normalises the text it cleaned once, never a second cleaning.
    typed = "ana@be\u200b\u0301.example"
    assert clean_text(clean_text(typed)) != clean_text(typed)


@PROPERTY
@given(st.one_of(email, st.text(max_size=60)))
@example("ana@be\u200b\u0301.example")
@example("  Ana@XN--BCHER-KVA.Example ")
def test_a_valid_form_keeps_the_email_normalise_email_gives(text: str) -> None:
    form = SignForm(name="Ana", email=text)
    if form.validate():
        assert form.email == normalise_email(text)
    else:
        assert form.email == clean_text(text)


def from_post_field_by_field(data: Mapping[str, object]) -> SignForm:
    """`SignForm.from_post` as it read each field through a helper."""

    def text(key: str) -> str:
        value = data.get(key, "")
        return value if isinstance(value, str) else ""

    return SignForm(
        name=text("name"),
        email=text("email"),
        occupation=text("occupation"),
        organisation=text("organisation"),
        opt_in_updates=text("opt_in_updates") == "yes",
        opt_in_partner=text("opt_in_partner") == "yes",
        honeypot=text("website"),
        form_token=text("form_token"),
    )


FIELD_NAMES = ["name", "email", "occupation", "organisation", "opt_in_updates", "opt_in_partner", "website"]
POSTS = st.dictionaries(
    st.sampled_from([*FIELD_NAMES, "form_token", "other"]),
    st.one_of(st.sampled_from(["", "yes", "no", "Yes", " yes"]), printable, st.none(), st.integers()),
)


@PROPERTY
@given(POSTS)
def test_from_post_reads_every_field_as_reading_them_one_by_one_did(data: dict[str, object]) -> None:
    assert SignForm.from_post(data) == from_post_field_by_field(data)  # type: ignore[arg-type]
