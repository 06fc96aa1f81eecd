"""The signer's input: normalise it, then validate it, and say plainly what is wrong.

Text is stored as typed (after Unicode NFC and removing invisible control characters) and
escaped on output; nothing here strips HTML, because "<3" and "Smith & Sons" are honest input.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from widget_server import messages
from widget_server.core.origins import ascii_domain, unicode_domain

MAX_LENGTHS = {"name": 120, "email": 254, "occupation": 100, "organisation": 150}
ATTRIBUTION_MAX = 100
HONEYPOT = "website"
# The posted fields `SignForm.from_post` reads, in the order it unpacks them.
_POSTED = ("name", "email", "occupation", "organisation", "opt_in_updates", "opt_in_partner", HONEYPOT, "form_token")

# Bidirectional overrides and isolates can make a name display as something else in staff pages.
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
# Invisible characters that change no honest name (zero-width space, word joiner, BOM). The
# joiners U+200C/U+200D stay: Persian and emoji need them.
_INVISIBLE = {"\u200b", "\u2060", "\ufeff"}
_LOCAL_PART = re.compile(r"^[^\s@<>()\[\],;:\\\"]+$")


def clean_text(value: str) -> str:
    """NFC, no control or bidi-override characters, runs of white space folded to one space."""
    if value.isascii() and value.isprintable():
        # Most input, and the same answer: printable ASCII is already NFC and holds no control,
        # bidi or invisible character, so only the white space is left to fold.
        return " ".join(value.split())
    value = unicodedata.normalize("NFC", value)
    kept = []
    for char in value:
        if char in _BIDI_CONTROLS or char in _INVISIBLE:
            continue
        if unicodedata.category(char) == "Cc":
            kept.append(" " if char in "\t\n\r" else "")
            continue
        kept.append(char)
    return " ".join("".join(kept).split())


# Default_Ignorable_Code_Point (Unicode's DerivedCoreProperties.txt) that are not format (Cf)
# characters: variation selectors, the grapheme joiner, Hangul fillers, tag and reserved
# ignorables. They change nothing a reader sees, so an address keeps none of them.
_IGNORABLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0\ufff0-\ufff8\U000e0000-\U000e0fff]"
)


def normalise_email(value: str) -> str:
    """One mailbox, one spelling: what signing stores and `person export`/`erase` compare with.

    Trimmed, lower case, with no invisible or ignorable character, and the domain in its
    canonical U-label form: IDNA 2008 with the UTS #46 mapping, as browsers process names, so
    full-width letters, ideographic and full-width dots, variation selectors and other ignorable
    code points, and an A-label ('xn--bcher-kva.example') all come to one spelling
    ('bücher.example').

    Why U-labels rather than A-labels: the canonical U-label is derived from the A-label
    (decoded from it), so it is exactly as unique; and it is the address as its owner writes and
    reads it, which is what the re-rendered form, the thank-you page and the staff export show,
    and what this function stored before for ordinary international domains, so those rows keep
    matching. Mail software that handles international domains converts it when it sends.

    A domain that does not map is left as typed (lower case), and `email_problem` refuses it.
    """
    return _normalised(clean_text(value))


def _normalised(value: str) -> str:
    """`normalise_email` for text `clean_text` already gave (cleaning twice is not always cleaning once)."""
    if value.isascii() and "xn--" not in value.lower():
        # An ASCII domain maps only by lower-casing, and ASCII holds no ignorable character; only
        # an A-label would be spelled differently (as its U-label). The slow path's answer, for
        # less (tests/unit/test_signform_properties.py).
        return value.lower()
    return _canonical_email(value)


def _canonical_email(value: str) -> str:
    """`normalise_email` for any cleaned text, without the ASCII short cut."""
    if value.count("@") != 1:
        return _visible(value).lower()
    local, domain = value.split("@")
    host = ascii_domain(domain)
    # A domain that does not map stays as typed, so that `email_problem` refuses it rather
    # than a cleaned-up spelling of it being taken for a name it is not.
    spelled = unicode_domain(host) if host is not None else domain.lower()
    return f"{_visible(local).lower()}@{spelled}"


def _visible(text: str) -> str:
    """Without format (Cf) characters, such as zero-width joiners, nor any other ignorable one."""
    text = _IGNORABLE.sub("", text)
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def email_problem(email: str) -> str | None:
    """Why a normalised address is refused (a sentence from messages), or None when it is fine.

    Syntax only, no network: one @, a sensible local part, and a domain of at least two labels
    that maps under IDNA 2008 / UTS #46 (`origins.ascii_domain`) and does not end in a number.
    An international domain that does not map is told apart (`messages.EMAIL_DOMAIN`).
    """
    if email.count("@") != 1 or len(email) > MAX_LENGTHS["email"]:
        return messages.EMAIL_INVALID
    local, domain = email.split("@")
    if not local or len(local) > 64 or not _LOCAL_PART.match(local):
        return messages.EMAIL_INVALID
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return messages.EMAIL_INVALID
    host = ascii_domain(domain)
    if host is None:
        # An international name that does not map gets its own sentence; a plain one is a typo.
        international = not domain.isascii() or "xn--" in domain.lower()
        return messages.EMAIL_DOMAIN if international else messages.EMAIL_INVALID
    labels = host.split(".")
    if len(labels) < 2 or labels[-1].isdigit():
        return messages.EMAIL_INVALID
    return None


def email_is_valid(email: str) -> bool:
    """True when `email_problem` finds nothing to say."""
    return email_problem(email) is None


@dataclass
class SignForm:
    """The sign form as typed (for re-rendering) and, once valid, normalised."""

    name: str = ""
    email: str = ""
    occupation: str = ""
    organisation: str = ""
    opt_in_updates: bool = False
    opt_in_partner: bool = False
    honeypot: str = ""
    form_token: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_post(cls, data: Mapping[str, str]) -> SignForm:
        # Each posted field as text ("" when missing or not text), read in one comprehension
        # rather than by a helper called once per field.
        name, email, occupation, organisation, updates, partner, honeypot, token = [
            value if isinstance(value := data.get(key, ""), str) else "" for key in _POSTED
        ]
        return cls(
            name=name,
            email=email,
            occupation=occupation,
            organisation=organisation,
            opt_in_updates=updates == "yes",
            opt_in_partner=partner == "yes",
            honeypot=honeypot,
            form_token=token,
        )

    def validate(self) -> bool:
        """Normalise every field in place and collect per-field messages; True when valid."""
        self.name = clean_text(self.name)
        typed_email = clean_text(self.email)
        self.email = _normalised(typed_email)  # normalise_email(self.email), cleaned once
        self.occupation = clean_text(self.occupation)
        self.organisation = clean_text(self.organisation)
        errors: dict[str, str] = {}
        if not self.name:
            errors["name"] = messages.NAME_MISSING
        if not self.email:
            errors["email"] = messages.EMAIL_MISSING
        elif len(self.email) <= MAX_LENGTHS["email"] and (problem := email_problem(self.email)):
            errors["email"] = problem
        for key, limit in MAX_LENGTHS.items():
            if len(getattr(self, key)) > limit and key not in errors:
                errors[key] = messages.TOO_LONG.format(limit=limit)
        self.errors = errors
        if errors:
            # Shown again to be corrected: as the person typed it, not in its stored spelling.
            self.email = typed_email
        return not errors

    @property
    def is_bot(self) -> bool:
        """A person never sees the honeypot field, so anything in it came from a script."""
        return bool(self.honeypot.strip())


def clean_attribution(params: Mapping[str, str], keys: tuple[str, ...]) -> dict[str, str]:
    """The partner page's source/utm_* parameters, cleaned and capped; unknown keys dropped."""
    found = {}
    for key in keys:
        value = clean_text(str(params.get(key, "")))[:ATTRIBUTION_MAX]
        if value:
            found[key] = value
    return found
