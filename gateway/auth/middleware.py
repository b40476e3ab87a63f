"""Authentication and authorization for every route, in one middleware.

A request proves who it is with HTTP Basic (what MLflow's client sends for
MLFLOW_TRACKING_USERNAME/PASSWORD) or a Bearer token (MLFLOW_TRACKING_TOKEN); the route's declared
`Access` says which permission it needs. A credential that checks out is remembered for
`CACHE_SECONDS`, keyed by an HMAC of the credential as parsed (scheme, user and password, or the
token), never of the raw header, so spelling one credential differently costs no second check; checks
of one credential already under way are shared rather than repeated.

A login attempt (a credential not in the cache) is counted against its client address *before* it is
checked, and refunded if it succeeds: an address with `failed_login_limit` attempts failed or in
progress in the last minute gets 429 before any check, so a burst of wrong passwords sent at once is
stopped at the limit instead of all being checked. Password checks are also capped at
`PASSWORD_CHECKS_PER_ADDRESS` at once per address (429 beyond) and `PASSWORD_CHECKS_IN_ALL` at once
per worker (503 beyond), and scrypt runs in its own small thread pool (`gateway.auth.passwords`), so
a flood of logins cannot occupy the threads that file I/O runs in.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.auth.passwords import HASHING_THREADS
from gateway.auth.store import AuthStore, Permission, Principal
from gateway.http.access import ROUTE_ACCESS_KEY, Access
from gateway.http.errors import ApiError
from gateway.http.request_keys import PRINCIPAL, REQUEST_ID, client_of
from gateway.logs import event
from gateway.metrics import metrics

CACHE_SECONDS = 30.0
_CACHE_MAX = 10_000
FAILED_LOGIN_WINDOW_SECONDS = 60.0
PASSWORD_CHECKS_PER_ADDRESS = 2
"""Password checks one client address may have under way at once (429 beyond)."""
PASSWORD_CHECKS_IN_ALL = 4 * HASHING_THREADS
"""Password checks one worker admits at once, running or waiting for a hashing thread (503 beyond):
at about a quarter of a second each, the last one admitted waits under a second."""
_NEEDED = {Access.READ: Permission.READ, Access.WRITE: Permission.WRITE, Access.ADMIN: Permission.ADMIN}
CHALLENGE = 'Basic realm="artifact-gateway", charset="UTF-8", Bearer realm="artifact-gateway"'


@dataclass(frozen=True, slots=True)
class Credential:
    """An Authorization header as parsed: ("basic", user, password) or ("bearer", "", token)."""

    scheme: str
    username: str
    secret: str

    def key(self, cache_key: bytes) -> bytes:
        text = "\0".join((self.scheme, self.username, self.secret)).encode(errors="surrogateescape")
        return hmac.new(cache_key, text, hashlib.sha256).digest()


def parse_credential(header: str) -> Credential | None:
    """The credential an Authorization header carries, or None when it carries none that can be checked."""
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return Credential("bearer", "", value) if value.isascii() else None
    if scheme.lower() == "basic" and value:
        try:
            username, colon, password = base64.b64decode(value, validate=True).decode().partition(":")
        except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 (UnicodeDecodeError)
            return None
        if colon and username:
            return Credential("basic", username, password)
    return None


class LoginLimited(ApiError):
    """A login refused before its credential was checked."""


class LoginAttempts:
    """Login attempts per client address: failed ones and those being checked, in a sliding window."""

    def __init__(self, limit: int, window: float = FAILED_LOGIN_WINDOW_SECONDS) -> None:
        """At most `limit` attempts failed or under way per `window` seconds per address; 0: no limit."""
        self._limit = limit
        self._window = window
        self._attempts: dict[str, collections.deque[float]] = {}
        self._checking: collections.Counter[str] = collections.Counter()
        self._checking_total = 0

    def _recent(self, address: str, now: float) -> collections.deque[float] | None:
        attempts = self._attempts.get(address)
        if attempts is None:
            return None
        while attempts and attempts[0] <= now - self._window:
            attempts.popleft()
        if not attempts:
            del self._attempts[address]
            return None
        return attempts

    def retry_after(self, address: str) -> int | None:
        """Seconds `address` must wait before trying again, or None if it may try now."""
        now = time.monotonic()
        attempts = self._recent(address, now)
        if not self._limit or attempts is None or len(attempts) < self._limit:
            return None
        return max(1, math.ceil(attempts[0] + self._window - now))

    def _count(self, address: str) -> float:
        now = time.monotonic()
        if len(self._attempts) >= _CACHE_MAX:  # a flood of addresses: forget the idle ones
            for stale in [key for key in self._attempts if self._recent(key, now) is None]:
                self._attempts.pop(stale, None)
        attempts = self._recent(address, now) or self._attempts.setdefault(address, collections.deque())
        attempts.append(now)
        return now

    def record_failure(self, address: str) -> None:
        """A credential that could not even be parsed: a failed attempt."""
        if self._limit:
            self._count(address)

    @contextlib.contextmanager
    def attempt(self, address: str, *, password: bool) -> Iterator[list[bool]]:
        """Count one attempt from `address` now; set the yielded flag `[True]` if it succeeds to refund it.

        Refused with 429 when the address is at its limit or, for a password, already has
        `PASSWORD_CHECKS_PER_ADDRESS` checks under way; with 503 when the worker has
        `PASSWORD_CHECKS_IN_ALL`.
        """
        if (wait := self.retry_after(address)) is not None:
            raise _too_many(address, wait)
        if password:
            if self._checking[address] >= PASSWORD_CHECKS_PER_ADDRESS:
                raise LoginLimited(
                    429,
                    "REQUEST_LIMIT_EXCEEDED",
                    f"Too many logins from {address} being checked at once; retry in a second",
                    headers={"Retry-After": "1"},
                )
            if self._checking_total >= PASSWORD_CHECKS_IN_ALL:
                raise LoginLimited(
                    503,
                    "TEMPORARILY_UNAVAILABLE",
                    "The server is busy checking other logins; retry in a second",
                    headers={"Retry-After": "1"},
                )
        stamp = self._count(address) if self._limit else None
        succeeded = [False]
        if password:
            self._checking[address] += 1
            self._checking_total += 1
        try:
            yield succeeded
        finally:
            if password:
                self._checking_total -= 1
                self._checking[address] -= 1
                if not self._checking[address]:
                    del self._checking[address]
            if succeeded[0] and stamp is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._attempts[address].remove(stamp)


def _too_many(address: str, wait: int) -> LoginLimited:
    return LoginLimited(
        429,
        "REQUEST_LIMIT_EXCEEDED",
        f"Too many failed logins from {address}; try again in {wait} s",
        headers={"Retry-After": str(wait)},
    )


class Authenticator:
    """Turns an Authorization header into a `Principal`, with a short cache of good credentials."""

    def __init__(self, store: AuthStore, failed_login_limit: int, cache_seconds: float = CACHE_SECONDS) -> None:
        self.store = store
        self.attempts = LoginAttempts(failed_login_limit)
        self._cache_seconds = cache_seconds
        self._cache_key = secrets.token_bytes(32)
        self._cache: dict[bytes, tuple[Principal, float]] = {}
        self._checking: dict[bytes, asyncio.Future[tuple[bool, Principal | None]]] = {}

    async def authenticate(self, header: str, address: str) -> Principal | None:
        """The principal `header` proves, or None when it proves nothing (a failed attempt of `address`).

        Raises `LoginLimited` when `address`, or the worker, may not have a credential checked now.
        """
        credential = parse_credential(header)
        if credential is None:
            if (wait := self.attempts.retry_after(address)) is not None:
                raise _too_many(address, wait)
            self.attempts.record_failure(address)
            return None
        key = credential.key(self._cache_key)
        while True:
            if (hit := self._cache.get(key)) is not None and hit[1] > time.monotonic():
                return hit[0]
            if (under_way := self._checking.get(key)) is None:
                break
            # The same credential is being checked for another request: share its answer.
            completed, principal = await asyncio.shield(under_way)
            if completed:
                return principal
        with self.attempts.attempt(address, password=credential.scheme == "basic") as succeeded:
            under_way = asyncio.get_running_loop().create_future()
            self._checking[key] = under_way
            outcome: tuple[bool, Principal | None] = (False, None)  # not completed: a waiter checks itself
            try:
                principal = await self._check(credential)
                outcome = (True, principal)
            finally:
                del self._checking[key]
                under_way.set_result(outcome)
            if principal is not None:
                succeeded[0] = True
                if len(self._cache) >= _CACHE_MAX:
                    self._cache.clear()
                self._cache[key] = (principal, time.monotonic() + self._cache_seconds)
        return principal

    async def _check(self, credential: Credential) -> Principal | None:
        if credential.scheme == "bearer":
            return await self.store.check_token(credential.secret)
        principal = await self.store.check_password(credential.username, credential.secret)
        metrics().password_checks.labels("accepted" if principal is not None else "refused").inc()
        return principal


AUTHENTICATOR_KEY = web.AppKey("authenticator", Authenticator)


def _unauthenticated(message: str) -> ApiError:
    return ApiError(401, "UNAUTHENTICATED", message, headers={"WWW-Authenticate": CHALLENGE})


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a request whose credential is missing, wrong or too weak for its route's `Access`."""
    # A request that matched no route (404/405) needs a reader too: unauthenticated callers learn nothing.
    access = request.app[ROUTE_ACCESS_KEY].get(request.match_info.route, Access.READ)
    if access in (Access.PUBLIC, Access.SIGNED):  # SIGNED: the handler checks the URL's signed grant
        return await handler(request)
    authenticator = request.app[AUTHENTICATOR_KEY]
    address = client_of(request)
    if (wait := authenticator.attempts.retry_after(address)) is not None:
        raise _too_many(address, wait)
    header = request.headers.get("Authorization")
    if not header:
        raise _unauthenticated(
            "This server requires a credential: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, "
            "or MLFLOW_TRACKING_TOKEN"
        )
    principal = await authenticator.authenticate(header, address)
    if principal is None:
        event("login failed", logging.WARNING, request_id=request.get(REQUEST_ID), remote=address)
        raise _unauthenticated("The username and password, or the token, were not accepted")
    request[PRINCIPAL] = principal
    needed = _NEEDED[access]
    if principal.permission < needed:
        raise ApiError(
            403,
            "PERMISSION_DENIED",
            f"'{principal.username}' has {principal.permission} permission; {request.method} "
            f"{request.path} needs {needed}",
        )
    return await handler(request)
