"""Staff passwords: hashed with scrypt (the standard library's memory-hard KDF), checked in
constant time.

A hash is kept as `scrypt$N$r$p$salt$key` (salt and key in URL-safe base64), so a hash made
with other parameters (older ones, or the tests' cheaper ones) still verifies; new parameters
apply from each account's next password change. The parameters are OWASP's for scrypt
(N=2^17, r=8, p=1: 128 MiB of memory per hash); SECURITY.md states them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class Cost:
    """scrypt's CPU/memory cost N (a power of two), block size r and parallelism p."""

    n: int = 2**17
    r: int = 8
    p: int = 1

    @property
    def maxmem(self) -> int:
        # scrypt needs 128·N·r bytes; Python refuses more than 32 MiB unless told otherwise.
        return 128 * self.n * self.r * (self.p + 1) + 1024 * 1024


DEFAULT_COST = Cost()
SALT_BYTES = 16
KEY_BYTES = 32
MIN_LENGTH = 10
MAX_LENGTH = 1024  # a longer "password" is a way to make the server work, not a password


def hash_password(password: str, cost: Cost = DEFAULT_COST) -> str:
    """A new salted hash of `password` in the `scrypt$N$r$p$salt$key` form."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, cost)
    return f"scrypt${cost.n}${cost.r}${cost.p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` is the one `stored` was made from; False for any malformed hash."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        cost = Cost(int(n), int(r), int(p))
        expected = base64.urlsafe_b64decode(key + "==")
        derived = _derive(password, base64.urlsafe_b64decode(salt + "=="), cost)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(derived, expected)


# Verified when an email has no account, so a sign-in takes as long whether or not it exists.
# Made on first use: importing this module must not cost a hash.
_dummy: dict[Cost, str] = {}


def waste_time_like_a_check(password: str, cost: Cost = DEFAULT_COST) -> None:
    """The work of one verification against a hash that matches nothing."""
    if cost not in _dummy:
        _dummy[cost] = hash_password(secrets.token_urlsafe(16), cost)
    verify_password(password, _dummy[cost])


def _derive(password: str, salt: bytes, cost: Cost) -> bytes:
    data = password.encode("utf-8")[: MAX_LENGTH * 4]
    return hashlib.scrypt(data, salt=salt, n=cost.n, r=cost.r, p=cost.p, maxmem=cost.maxmem, dklen=KEY_BYTES)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
