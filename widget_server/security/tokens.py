"""Signed tokens: the partner token in the snippet, the form token in each rendered form, and the
confirmation token in the link a confirmation email carries.

All are itsdangerous serializers with HMAC-SHA256 (its default is SHA-1) and the key list
from settings, so older keys still verify during a key rotation. Different salts keep one kind
of token from being accepted as the other.

Every counter and embed request carries a partner token and, in a surge, many signatures carry
one form token, so what was verified is remembered (`memo.BoundedMemo`), and so are the tokens
minted. Only a token whose signature verified is kept, under its whole text, and only what the
token itself says: whether its partner is still current (`core.attribution.credited_partner`)
and whether a form is too young or too old (the signing use case) are judged by the callers on
every request, never remembered. The signers are built once and keep their derived keys:
itsdangerous would otherwise build a signer and derive its key with an extra HMAC on every
`dumps` and `loads`.

Only the canonical spelling of a token is read (`canonical`), before any memo is consulted:
base64 is lenient (padding, the other alphabet, characters it skips, spare bits), and each
spelling of one token would otherwise be a separate entry in the memos and the logs. A form
token says which partner token version it was rendered under and when its life began, so a
rotation ends it and a second ask never renews it; one verified only by a retired key says so
(`FormClaim.old_key`), so that it is never signed again under the current key.

A confirmation token names one pending signature (by its id: the link carries no address) and
its pledge, and when the signature was made, from which its lifetime counts; like a form token,
its age is judged by the caller. It has its own salt, so neither other kind of token is ever
accepted as one, nor it as either of them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from itsdangerous import BadSignature, Signer, URLSafeSerializer
from itsdangerous.encoding import base64_decode, base64_encode

from widget_server.core.attribution import PartnerClaim
from widget_server.core.models import Partner
from widget_server.errors import Invalid, TokenError
from widget_server.memo import BoundedMemo
from widget_server.messages import CONFIRM_LINK_EXPIRED, FORM_BAD, TAMPERED

__all__ = ["MAX_TOKEN_CHARS", "ConfirmClaim", "FormClaim", "PartnerClaim", "Tokens", "canonical"]

# Longer than any token we mint (a form token with every attribution parameter at its cap,
# or a partner token with many long origins), so only made-up text is refused for its length.
MAX_TOKEN_CHARS = 16_384
# itsdangerous's URL-safe form: an optional "." (compressed), the payload, ".", the signature.
_SPELLING = re.compile(r"\.?[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def canonical(token: str) -> bool:
    """Whether `token` is spelt exactly as we mint it: unpadded URL-safe base64, no spare bits.

    Each part is decoded and encoded again: only the one spelling that gives itself back passes.
    """
    if len(token) > MAX_TOKEN_CHARS or not _SPELLING.fullmatch(token):
        return False
    for part in token.lstrip(".").split("."):
        try:
            if base64_encode(base64_decode(part)).decode("ascii") != part:
                return False
        except Exception:  # itsdangerous raises BadData, binascii its own: either way, not ours
            return False
    return True


@dataclass(frozen=True)
class FormClaim:
    """What a form token says: who the form was rendered for, where, and when.

    `rendered_at` is when this copy of the form was shown (the minimum fill time counts from
    it); `issued_at` when the first one was (its lifetime counts from it, so asking again never
    renews it); None means the same moment. `version` is the partner token version the form
    was rendered under (0 when direct). `old_key` is never in a token: it says a token read was
    verified only by a retired key.
    """

    pledge_id: int
    partner_id: int | None
    origin: str
    rendered_at: float
    attribution: Mapping[str, str]
    version: int = 0
    issued_at: float | None = None
    old_key: bool = False

    @property
    def born_at(self) -> float:
        """When the form's life began: its first render."""
        return self.rendered_at if self.issued_at is None else self.issued_at


@dataclass(frozen=True)
class ConfirmClaim:
    """What a confirmation link says: which pending signature of which pledge, signed when."""

    pending_id: int
    pledge_id: int
    signed_at: float  # seconds since the epoch; the link's lifetime counts from it


class _KeptKeySigner(Signer):
    """A signer that derives each key once (the derivation depends only on key and salt)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._derived: dict[str | bytes | None, bytes] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        # Keyed by the configured keys only (a fixed list), so this cannot grow.
        key = self._derived.get(secret_key)
        if key is None:
            key = self._derived[secret_key] = super().derive_key(secret_key)
        return key


class _Serializer(URLSafeSerializer):
    """A serializer that reuses one signer for its own salt instead of building one per call."""

    def __init__(self, keys: list[str], salt: str) -> None:
        super().__init__(keys, salt=salt, signer=_KeptKeySigner, signer_kwargs={"digest_method": hashlib.sha256})
        self._signer = super().make_signer()

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        return self._signer if salt is None else super().make_signer(salt)


class Tokens:
    MAX_KEPT = 10_000  # distinct tokens of each kind remembered
    MAX_KEPT_BYTES = 8 * 1024 * 1024  # and about this much memory for each kind

    def __init__(self, keys: list[str]) -> None:
        self._partner = _Serializer(keys, salt="partner-token")
        # The current key (the last) alone, then the retired ones: a form token verified only by
        # a retired key is marked as such. Together they try each key once, as one list would.
        self._form = _Serializer(keys[-1:], salt="form-token")
        self._form_retired = _Serializer(keys[:-1], salt="form-token") if len(keys) > 1 else None
        # Every key verifies (a link mailed before a key rotation still works), the newest signs.
        self._confirm = _Serializer(keys, salt="confirm-token")
        self._verified: BoundedMemo[str, PartnerClaim] = self._memo()
        self._verified_forms: BoundedMemo[str, FormClaim] = self._memo()
        self._minted: BoundedMemo[tuple[int, tuple[str, ...], int], str] = self._memo()
        self._this_tick = 0
        self._page_forms: BoundedMemo[Hashable, str] = self._memo()

    def _memo(self) -> BoundedMemo[Any, Any]:
        return BoundedMemo(self.MAX_KEPT, self.MAX_KEPT_BYTES)

    # Partner tokens never expire on their own: they end by rotation or revocation.
    def partner_token(self, partner: Partner) -> str:
        key = (partner.id, partner.origins, partner.token_version)
        token = self._minted.get(key)
        if token is None:
            payload = {"p": partner.id, "o": list(partner.origins), "v": partner.token_version}
            token = self._minted.put(key, str(self._partner.dumps(payload)))
        return token

    def read_partner_token(self, token: str) -> PartnerClaim:
        """What the token says; TokenError if it is forged. Whether it is current is the caller's
        to judge, against the partner's row (`core.attribution.credited_partner`)."""
        # A remembered token was canonical when it was verified (nothing else is remembered), so
        # the exact string found needs no second look; only a new one is checked.
        claim = self._verified.get(token)
        if claim is not None:
            return claim
        if not canonical(token):
            raise TokenError(TAMPERED)
        try:
            data: Any = self._partner.loads(token)
            claim = PartnerClaim(int(data["p"]), tuple(str(o) for o in data["o"]), int(data["v"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            raise TokenError(TAMPERED) from None
        return self._verified.put(token, claim)

    def form_token(self, claim: FormClaim) -> str:
        payload = {
            "pl": claim.pledge_id,
            "p": claim.partner_id,
            "o": claim.origin,
            "t": round(claim.rendered_at, 3),
            "i": round(claim.born_at, 3),
            "v": claim.version,
            "a": dict(claim.attribution),
        }
        return str(self._form.dumps(payload))

    def page_form_token(self, key: Hashable, tick: int, claim: Callable[[], FormClaim]) -> str:
        """The form token for a page rendered at `tick` (the caller's time step), once per (key, tick).

        `key` must determine the claim but for its time (the caller's own key: pledge, partner,
        origin, query); `claim()` makes it, stamped with the tick. Minting (JSON, zlib, HMAC) is
        most of an embed page view's work, and everyone opening the same form in the same tick
        may share a token: it names no person, and each signature is still checked on its own
        (SECURITY.md, "Forged attribution").
        """
        if tick != self._this_tick:
            self._this_tick = tick
            self._page_forms.clear()
        token = self._page_forms.get(key)
        if token is None:
            token = self._page_forms.put(key, self.form_token(claim()))
        return token

    def read_form_token(self, token: str) -> FormClaim:
        """The form's claim; Invalid if it is forged. Its age is the caller's to judge, every time.

        Verified tokens are remembered, as partner tokens are: forms opened in the same tenth
        of a second share a token (`page_form_token`), so in a surge many signatures arrive
        with one, and a claim follows from its token alone. Nothing about its age is kept.
        Only the canonical spelling is read (and so remembered), so one token is one memo entry.
        """
        claim = self._verified_forms.get(token)  # remembered only once canonical and verified
        if claim is not None:
            return claim
        if not canonical(token):
            raise Invalid(FORM_BAD)
        old_key = False
        try:
            try:
                data: Any = self._form.loads(token)
            except BadSignature:
                if self._form_retired is None:
                    raise
                data, old_key = self._form_retired.loads(token), True
            claim = FormClaim(
                pledge_id=int(data["pl"]),
                partner_id=None if data["p"] is None else int(data["p"]),
                origin=str(data["o"]),
                rendered_at=float(data["t"]),
                # Read-only: a remembered claim is shared by every signature with its token.
                attribution=MappingProxyType({str(k): str(v) for k, v in dict(data["a"]).items()}),
                version=int(data["v"]),
                issued_at=float(data["i"]),
                old_key=old_key,
            )
        except (BadSignature, KeyError, TypeError, ValueError):
            raise Invalid(FORM_BAD) from None
        return self._verified_forms.put(token, claim)

    def confirm_token(self, claim: ConfirmClaim) -> str:
        """The token of a confirmation link (a few dozen characters, safe in a URL path)."""
        return str(self._confirm.dumps({"s": claim.pending_id, "pl": claim.pledge_id, "t": int(claim.signed_at)}))

    def read_confirm_token(self, token: str) -> ConfirmClaim:
        """The link's claim; Invalid if it is forged or another kind of token. Its age is the
        caller's to judge. Links are followed once or twice each, so nothing is remembered."""
        if not canonical(token):
            raise Invalid(CONFIRM_LINK_EXPIRED)
        try:
            data: Any = self._confirm.loads(token)
            return ConfirmClaim(int(data["s"]), int(data["pl"]), float(data["t"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            raise Invalid(CONFIRM_LINK_EXPIRED) from None
