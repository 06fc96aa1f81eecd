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

MAX_LENGTHS = {"name": 120, "email": 254, "occupation": 100, "organisation": 150}
ATTRIBUTION_MAX = 100
HONEYPOT = "website"

# Bidirectional overrides and isolates can make a name display as something else in staff pages.
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
# Invisible characters that change no honest name (zero-width space, word joiner, BOM). The
# joiners U+200C/U+200D stay: Persian and emoji need them.
_INVISIBLE = {"\u200b", "\u2060", "\ufeff"}
_LOCAL_PART = re.compile(r"^[^\s@<>()\[\],;:\\\"]+$")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


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


def normalise_email(value: str) -> str:
    """Trimmed, lower case, and with no invisible format characters: one mailbox, one spelling."""
    value = clean_text(value)
    if value.isascii():  # no format (Cf) character is ASCII
        return value.lower()
    return "".join(c for c in value if unicodedata.category(c) != "Cf").lower()


def email_is_valid(email: str) -> bool:
    """Syntax only, no network: one @, a sensible local part, a domain of valid labels."""
    if email.count("@") != 1 or len(email) > MAX_LENGTHS["email"]:
        return False
    local, domain = email.split("@")
    if not local or len(local) > 64 or not _LOCAL_PART.match(local):
        return False
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    if domain.isascii():
        # The IDNA codec would only check label lengths, which _LABEL checks below anyway.
        ascii_domain = domain
    else:
        try:
            ascii_domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return False
    labels = ascii_domain.split(".")
    if len(labels) < 2 or labels[-1].isdigit() or len(ascii_domain) > 253:
        return False
    return all(_LABEL.match(label) for label in labels)


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
        def text(key: str) -> str:
            value = data.get(key, "")
            return value if isinstance(value, str) else ""

        return cls(
            name=text("name"),
            email=text("email"),
            occupation=text("occupation"),
            organisation=text("organisation"),
            opt_in_updates=text("opt_in_updates") == "yes",
            opt_in_partner=text("opt_in_partner") == "yes",
            honeypot=text(HONEYPOT),
            form_token=text("form_token"),
        )

    def validate(self) -> bool:
        """Normalise every field in place and collect per-field messages; True when valid."""
        self.name = clean_text(self.name)
        self.email = normalise_email(self.email)
        self.occupation = clean_text(self.occupation)
        self.organisation = clean_text(self.organisation)
        errors: dict[str, str] = {}
        if not self.name:
            errors["name"] = messages.NAME_MISSING
        if not self.email:
            errors["email"] = messages.EMAIL_MISSING
        elif len(self.email) <= MAX_LENGTHS["email"] and not email_is_valid(self.email):
            errors["email"] = messages.EMAIL_INVALID
        for key, limit in MAX_LENGTHS.items():
            if len(getattr(self, key)) > limit and key not in errors:
                errors[key] = messages.TOO_LONG.format(limit=limit)
        self.errors = errors
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
