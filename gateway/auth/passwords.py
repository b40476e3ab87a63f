"""Password hashing with scrypt (memory-hard, in the standard library), parameters stored with each hash.

N=2^14, r=8, p=5 is one of OWASP's recommended scrypt settings: 16 MiB and about a quarter of a
second of CPU per check here, which the auth cache pays once per credential and minute, not per request.

Hashes are computed in a pool of their own (`HASHING_THREADS` threads per process), never in the
event loop's default executor: that one runs every file-system call of local-disk artifacts, and a
flood of logins there made a 100-byte download wait seconds behind them.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

_N, _R, _P = 2**14, 8, 5
_MAX_MEM = 64 << 20
_SCHEME = "scrypt"
HASHING_THREADS = 2
"""Threads per process that compute scrypt hashes; the login limits keep at most a few checks waiting."""
_pool: tuple[int, ThreadPoolExecutor] | None = None


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


def _hashing_pool() -> ThreadPoolExecutor:
    """This process's hashing threads (a forked worker makes its own: threads do not survive a fork)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(HASHING_THREADS, thread_name_prefix="password-hashing"))
    return _pool[1]


def _check_or_pretend(password: str, stored: str | None) -> bool:
    return check_password(password, unknown_user_hash() if stored is None else stored)


async def check_password_off_loop(password: str, stored: str | None) -> bool:
    """`check_password` in the hashing pool; `stored` None (no such user) takes as long and is False."""
    matches = await asyncio.get_running_loop().run_in_executor(_hashing_pool(), _check_or_pretend, password, stored)
    return matches and stored is not None


async def hash_password_off_loop(password: str) -> str:
    """`hash_password` in the hashing pool."""
    return await asyncio.get_running_loop().run_in_executor(_hashing_pool(), hash_password, password)
