"""Password hashing with scrypt (memory-hard, in the standard library), parameters stored with each hash.

N=2^14, r=8, p=5 is one of OWASP's recommended scrypt settings: 16 MiB and about a quarter of a
second of CPU per check here, which the auth cache pays once per credential and minute, not per request.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 5
_MAX_MEM = 64 << 20
_SCHEME = "scrypt"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$salt$hash`, every part needed to check the password later."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAX_MEM, dklen=32)
    return f"{_SCHEME}${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (from `hash_password`); constant-time in the comparison."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != _SCHEME:
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), maxmem=_MAX_MEM, dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@functools.cache
def unknown_user_hash() -> str:
    """Checked against when the user does not exist, so the answer takes as long either way."""
    return hash_password(secrets.token_urlsafe(16))
