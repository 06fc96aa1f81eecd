"""Signed tokens: the partner token in the snippet, and the form token in each rendered form.

Both are itsdangerous serializers with HMAC-SHA256 (its default is SHA-1) and the key list
from settings, so older keys still verify during a key rotation. Different salts keep one kind
of token from being accepted as the other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from .errors import BadRequest, TokenError
from .models import Partner

TAMPERED = "This widget's code is damaged or incomplete. Please copy the snippet again from the campaign."
ROTATED = "This widget's code has been replaced by a newer one. Please ask the campaign for the current snippet."
REVOKED = "This organisation's widget has been switched off by the campaign."
FORM_EXPIRED = "This form was open for a long time. Your details are kept below; please press Sign again."
FORM_BAD = "This form could not be checked. Please reload the page and sign again."


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
    attribution: dict[str, str]


class Tokens:
    def __init__(self, keys: list[str]) -> None:
        signer = {"digest_method": hashlib.sha256}
        self._partner = URLSafeSerializer(keys, salt="partner-token", signer_kwargs=signer)
        self._form = URLSafeSerializer(keys, salt="form-token", signer_kwargs=signer)

    # Partner tokens never expire on their own: they end by rotation or revocation.
    def partner_token(self, partner: Partner) -> str:
        payload = {"p": partner.id, "o": list(partner.origins), "v": partner.token_version}
        return str(self._partner.dumps(payload))

    def read_partner_token(self, token: str) -> PartnerClaim:
        try:
            data: Any = self._partner.loads(token)
            return PartnerClaim(int(data["p"]), tuple(str(o) for o in data["o"]), int(data["v"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            raise TokenError(TAMPERED) from None

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
            "a": claim.attribution,
        }
        return str(self._form.dumps(payload))

    def read_form_token(self, token: str) -> FormClaim:
        """The form's claim; BadRequest if it is forged. Its age is the caller's to judge."""
        try:
            data: Any = self._form.loads(token)
            claim = FormClaim(
                pledge_id=int(data["pl"]),
                partner_id=None if data["p"] is None else int(data["p"]),
                origin=str(data["o"]),
                rendered_at=float(data["t"]),
                attribution={str(k): str(v) for k, v in dict(data["a"]).items()},
            )
        except (BadSignature, KeyError, TypeError, ValueError):
            raise BadRequest(FORM_BAD) from None
        return claim
