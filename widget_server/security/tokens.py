"""Signed tokens: the partner token in the snippet, and the form token in each rendered form.

Both are itsdangerous serializers with HMAC-SHA256 (its default is SHA-1) and the key list
from settings, so older keys still verify during a key rotation. Different salts keep one kind
of token from being accepted as the other.

Every counter and embed request carries a partner token, so verified ones are remembered (only
what verified; `check_partner` still compares each with the partner's current row, so a
revocation or rotation is refused as before), and so are the tokens minted per partner; verified
form tokens are remembered too (`read_form_token`). The
signers are built once and keep their derived keys: itsdangerous would otherwise build a
signer and derive its key with an extra HMAC on every `dumps` and `loads`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from itsdangerous import BadSignature, Signer, URLSafeSerializer

from widget_server.core.models import Partner
from widget_server.errors import Invalid, TokenError
from widget_server.messages import FORM_BAD, REVOKED, ROTATED, TAMPERED


@dataclass(frozen=True)
class PartnerClaim:
    """What a partner token says, once its signature is verified."""

    partner_id: int
    origins: tuple[str, ...]
    version: int


@dataclass(frozen=True)
class FormClaim:
    """What a form token says: who the form was rendered for, where, and when."""

    pledge_id: int
    partner_id: int | None
    origin: str
    rendered_at: float
    attribution: Mapping[str, str]


class _KeptKeySigner(Signer):
    """A signer that derives each key once (the derivation depends only on key and salt)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._derived: dict[str | bytes | None, bytes] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
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
    MAX_KEPT = 10_000  # distinct tokens of each kind remembered; past it, the memory starts afresh

    def __init__(self, keys: list[str]) -> None:
        self._partner = _Serializer(keys, salt="partner-token")
        self._form = _Serializer(keys, salt="form-token")
        self._verified: dict[str, PartnerClaim] = {}
        self._verified_forms: dict[str, FormClaim] = {}
        self._minted: dict[tuple[int, tuple[str, ...], int], str] = {}
        self._this_tick = 0
        self._page_forms: dict[Hashable, str] = {}

    # Partner tokens never expire on their own: they end by rotation or revocation.
    def partner_token(self, partner: Partner) -> str:
        key = (partner.id, partner.origins, partner.token_version)
        token = self._minted.get(key)
        if token is None:
            payload = {"p": partner.id, "o": list(partner.origins), "v": partner.token_version}
            token = str(self._partner.dumps(payload))
            self._keep(self._minted, key, token)
        return token

    def read_partner_token(self, token: str) -> PartnerClaim:
        claim = self._verified.get(token)
        if claim is not None:
            return claim
        try:
            data: Any = self._partner.loads(token)
            claim = PartnerClaim(int(data["p"]), tuple(str(o) for o in data["o"]), int(data["v"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            raise TokenError(TAMPERED) from None
        self._keep(self._verified, token, claim)
        return claim

    def _keep(self, kept: dict[Any, Any], key: Any, value: Any) -> None:
        if len(kept) >= self.MAX_KEPT:
            kept.clear()
        kept[key] = value

    @staticmethod
    def check_partner(claim: PartnerClaim, partner: Partner | None) -> Partner:
        """The token's partner, if it still exists, is not revoked and this is its current token."""
        if partner is None:
            raise TokenError(TAMPERED)
        if partner.revoked:
            raise TokenError(REVOKED, claim.origins)
        if partner.token_version != claim.version:
            raise TokenError(ROTATED, claim.origins)
        return partner

    def form_token(self, claim: FormClaim) -> str:
        payload = {
            "pl": claim.pledge_id,
            "p": claim.partner_id,
            "o": claim.origin,
            "t": round(claim.rendered_at, 3),
            "a": dict(claim.attribution),
        }
        return str(self._form.dumps(payload))

    def page_form_token(self, key: Hashable, tick: int, claim: Callable[[], FormClaim]) -> str:
        """The form token for a page rendered at `tick` (the caller's time step), once per (key, tick).

        `key` must determine the claim but for its time (the caller's own key: pledge, partner,
        origin, query); `claim()` makes it, stamped with the tick. Minting (JSON, zlib, HMAC) is
        most of an embed page view's cost, and everyone opening the same form in the same tick
        may share a token: it names no person, and each signature is still checked on its own.
        """
        if tick != self._this_tick:
            self._this_tick, self._page_forms = tick, {}
        token = self._page_forms.get(key)
        if token is None:
            token = self.form_token(claim())
            self._keep(self._page_forms, key, token)
        return token

    def read_form_token(self, token: str) -> FormClaim:
        """The form's claim; Invalid if it is forged. Its age is the caller's to judge.

        Verified tokens are remembered, as partner tokens are: forms opened in the same tenth
        of a second share a token (`page_form_token`), so in a surge many signatures arrive
        with one, and a claim follows from its token alone. Nothing about its age is kept.
        """
        claim = self._verified_forms.get(token)
        if claim is not None:
            return claim
        try:
            data: Any = self._form.loads(token)
            claim = FormClaim(
                pledge_id=int(data["pl"]),
                partner_id=None if data["p"] is None else int(data["p"]),
                origin=str(data["o"]),
                rendered_at=float(data["t"]),
                # Read-only: a remembered claim is shared by every signature with its token.
                attribution=MappingProxyType({str(k): str(v) for k, v in dict(data["a"]).items()}),
            )
        except (BadSignature, KeyError, TypeError, ValueError):
            raise Invalid(FORM_BAD) from None
        self._keep(self._verified_forms, token, claim)
        return claim
