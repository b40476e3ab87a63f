"""Authentication and authorization for every route, in one middleware.

A request proves who it is with HTTP Basic (what MLflow's client sends for
MLFLOW_TRACKING_USERNAME/PASSWORD) or a Bearer token (MLFLOW_TRACKING_TOKEN); the route's declared
`Access` says which permission it needs. A credential that checks out is remembered for
`CACHE_SECONDS` (keyed by an HMAC of it, never the secret itself), because the client sends it with
every request and a password check costs a quarter of a second by design. Failed logins are counted
per client address; past the limit that address gets 429 until the window has passed.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import logging
import math
import secrets
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.auth.store import AuthStore, Permission, Principal
from gateway.http.access import ROUTE_ACCESS_KEY, Access
from gateway.http.errors import ApiError
from gateway.http.request_keys import PRINCIPAL, REQUEST_ID
from gateway.logs import event

CACHE_SECONDS = 30.0
_CACHE_MAX = 10_000
FAILED_LOGIN_WINDOW_SECONDS = 60.0
_NEEDED = {Access.READ: Permission.READ, Access.WRITE: Permission.WRITE, Access.ADMIN: Permission.ADMIN}
CHALLENGE = 'Basic realm="artifact-gateway", charset="UTF-8", Bearer realm="artifact-gateway"'


class FailedLogins:
    """Failed logins per client address in a sliding window."""

    def __init__(self, limit: int, window: float = FAILED_LOGIN_WINDOW_SECONDS) -> None:
        """At most `limit` failures per `window` seconds per address; 0: no limit."""
        self._limit = limit
        self._window = window
        self._failures: dict[str, collections.deque[float]] = {}

    def _recent(self, address: str, now: float) -> collections.deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures

    def retry_after(self, address: str) -> int | None:
        """Seconds `address` must wait before trying again, or None if it may try now."""
        now = time.monotonic()
        failures = self._recent(address, now)
        if not self._limit or failures is None or len(failures) < self._limit:
            return None
        return max(1, math.ceil(failures[0] + self._window - now))

    def record(self, address: str) -> None:
        if not self._limit:
            return
        now = time.monotonic()
        if len(self._failures) >= _CACHE_MAX:  # a flood of addresses: forget the idle ones
            for stale in [key for key in self._failures if self._recent(key, now) is None]:
                self._failures.pop(stale, None)
        failures = self._recent(address, now) or self._failures.setdefault(address, collections.deque())
        failures.append(now)
        if len(failures) > self._limit:
            failures.popleft()


class Authenticator:
    """Turns an Authorization header into a `Principal`, with a short cache of good credentials."""

    def __init__(self, store: AuthStore, failed_login_limit: int, cache_seconds: float = CACHE_SECONDS) -> None:
        self.store = store
        self.failed_logins = FailedLogins(failed_login_limit)
        self._cache_seconds = cache_seconds
        self._cache_key = secrets.token_bytes(32)
        self._cache: dict[bytes, tuple[Principal, float]] = {}

    async def authenticate(self, header: str) -> Principal | None:
        """The principal `header` proves, or None when it proves nothing."""
        key = hmac.new(self._cache_key, header.encode(errors="surrogateescape"), hashlib.sha256).digest()
        now = time.monotonic()
        if (hit := self._cache.get(key)) is not None and hit[1] > now:
            return hit[0]
        principal = await self._check(header)
        if principal is not None:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = (principal, now + self._cache_seconds)
        return principal

    async def _check(self, header: str) -> Principal | None:
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return await self.store.check_token(value) if value.isascii() else None
        if scheme.lower() == "basic" and value:
            try:
                username, colon, password = base64.b64decode(value, validate=True).decode().partition(":")
            except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 (UnicodeDecodeError)
                return None
            if colon and username:
                return await self.store.check_password(username, password)
        return None


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
    address = request.remote or "unknown"
    if (wait := authenticator.failed_logins.retry_after(address)) is not None:
        raise ApiError(
            429,
            "REQUEST_LIMIT_EXCEEDED",
            f"Too many failed logins from {address}; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    header = request.headers.get("Authorization")
    if not header:
        raise _unauthenticated(
            "This server requires a credential: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, "
            "or MLFLOW_TRACKING_TOKEN"
        )
    principal = await authenticator.authenticate(header)
    if principal is None:
        authenticator.failed_logins.record(address)
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
