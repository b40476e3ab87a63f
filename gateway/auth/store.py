"""Users and API tokens in the metadata store: who may call the gateway, and with what permission.

Passwords are kept as scrypt hashes (`gateway.auth.passwords`); a token is shown once at creation and
kept as the SHA-256 of its secret (a random 256-bit value needs no slow hash).
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.auth.passwords import check_password_off_loop, hash_password_off_loop
from gateway.store import schema as s
from gateway.store.database import probe

TOKEN_PREFIX = "agw_"  # noqa: S105 (a marker that makes leaked tokens easy to scan for, not a secret)
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
MIN_PASSWORD_LENGTH = 12


class Permission(enum.IntEnum):
    """What a user or token may do; each level includes the ones below it."""

    READ = 1
    WRITE = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Permission:
        try:
            return cls[text.upper()]
        except KeyError:
            raise AuthStoreError(f"unknown permission '{text}'; use read, write or admin") from None

    def __str__(self) -> str:
        return self.name.lower()


class AuthStoreError(Exception):
    """A refused change (unknown user, duplicate name, weak password); the message is for the operator."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request, and what they may do."""

    username: str
    permission: Permission
    token_id: str | None = None  # set when a token, not a password, proved who it is


@dataclass(frozen=True, slots=True)
class UserInfo:
    username: str
    permission: Permission
    creation_time: int


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_id: str
    username: str
    name: str
    permission: Permission
    creation_time: int
    expiry_time: int | None


def _now() -> int:
    return int(time.time())


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthStoreError(f"the password is too short; use at least {MIN_PASSWORD_LENGTH} characters")


class AuthStore:
    """Users and tokens over the metadata database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def ping(self) -> None:
        """Raise unless the database answers a query on the users table."""
        await probe(self._engine, select(s.users.c.username).limit(1))

    async def add_user(self, username: str, password: str, permission: Permission) -> None:
        if not _USERNAME.match(username):
            raise AuthStoreError(f"'{username}' is not a valid username: 1-128 letters, digits, '.', '_', '@' or '-'")
        check_new_password(password)
        hashed = await hash_password_off_loop(password)
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(s.users).values(
                        username=username, password_hash=hashed, permission=str(permission), creation_time=_now()
                    )
                )
        except IntegrityError:
            raise AuthStoreError(f"user '{username}' already exists") from None

    async def set_password(self, username: str, password: str) -> None:
        check_new_password(password)
        hashed = await hash_password_off_loop(password)
        await self._update_user(username, password_hash=hashed)

    async def set_permission(self, username: str, permission: Permission) -> None:
        await self._update_user(username, permission=str(permission))

    async def _update_user(self, username: str, **values: str) -> None:
        async with self._engine.begin() as conn:
            result = await conn.execute(update(s.users).where(s.users.c.username == username).values(**values))
        if result.rowcount == 0:
            raise AuthStoreError(f"no user '{username}'")

    async def remove_user(self, username: str) -> None:
        """Remove the user and every token of theirs."""
        async with self._engine.begin() as conn:
            user_id = await self._user_id(conn, username)
            await conn.execute(delete(s.api_tokens).where(s.api_tokens.c.user_id == user_id))
            await conn.execute(delete(s.users).where(s.users.c.user_id == user_id))

    async def list_users(self) -> list[UserInfo]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(s.users.c.username, s.users.c.permission, s.users.c.creation_time).order_by(s.users.c.username)
            )
            return [UserInfo(row.username, Permission.parse(row.permission), row.creation_time) for row in rows]

    async def create_token(
        self, username: str, name: str, permission: Permission | None = None, expires_in_days: int | None = None
    ) -> tuple[TokenInfo, str]:
        """A new token for `username` (at most their permission); returns it with its secret, shown only now."""
        token_id = secrets.token_hex(4)
        secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        created = _now()
        expiry = created + expires_in_days * 86400 if expires_in_days else None
        async with self._engine.begin() as conn:
            user_id = await self._user_id(conn, username)
            owner = Permission.parse(
                (await conn.execute(select(s.users.c.permission).where(s.users.c.user_id == user_id))).scalar_one()
            )
            granted = permission or owner
            if granted > owner:
                raise AuthStoreError(
                    f"user '{username}' has {owner} permission; a token of theirs cannot have {granted}"
                )
            await conn.execute(
                insert(s.api_tokens).values(
                    token_id=token_id,
                    user_id=user_id,
                    name=name,
                    secret_sha256=_sha256(secret),
                    permission=str(granted),
                    creation_time=created,
                    expiry_time=expiry,
                )
            )
        return TokenInfo(token_id, username, name, granted, created, expiry), secret

    async def list_tokens(self) -> list[TokenInfo]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(s.api_tokens, s.users.c.username)
                .join(s.users, s.users.c.user_id == s.api_tokens.c.user_id)
                .order_by(s.users.c.username, s.api_tokens.c.creation_time)
            )
            return [
                TokenInfo(
                    row.token_id,
                    row.username,
                    row.name,
                    Permission.parse(row.permission),
                    row.creation_time,
                    row.expiry_time,
                )
                for row in rows
            ]

    async def revoke_token(self, token_id: str) -> None:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(s.api_tokens).where(s.api_tokens.c.token_id == token_id))
        if result.rowcount == 0:
            raise AuthStoreError(f"no token '{token_id}'; `artifact-gateway tokens list` shows them")

    async def check_password(self, username: str, password: str) -> Principal | None:
        """The principal if `password` is `username`'s, else None (as slow for an unknown user)."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(s.users.c.password_hash, s.users.c.permission).where(s.users.c.username == username)
                )
            ).first()
        matches = await check_password_off_loop(password, row.password_hash if row else None)
        return Principal(username, Permission.parse(row.permission)) if matches and row else None

    async def check_token(self, secret: str) -> Principal | None:
        """The principal a live token stands for: the lower of its and its user's permission."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        s.api_tokens.c.token_id,
                        s.api_tokens.c.permission,
                        s.api_tokens.c.expiry_time,
                        s.users.c.username,
                        s.users.c.permission.label("user_permission"),
                    )
                    .join(s.users, s.users.c.user_id == s.api_tokens.c.user_id)
                    .where(s.api_tokens.c.secret_sha256 == _sha256(secret))
                )
            ).first()
        if row is None or (row.expiry_time is not None and row.expiry_time < _now()):
            return None
        permission = min(Permission.parse(row.permission), Permission.parse(row.user_permission))
        return Principal(row.username, permission, row.token_id)

    @staticmethod
    async def _user_id(conn: AsyncConnection, username: str) -> int:
        user_id = (await conn.execute(select(s.users.c.user_id).where(s.users.c.username == username))).scalar()
        if user_id is None:
            raise AuthStoreError(f"no user '{username}'; `artifact-gateway users list` shows them")
        return int(user_id)
