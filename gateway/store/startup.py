"""Getting the metadata store ready from a command (`serve`, `migrate`, `users`, `tokens`): create or
upgrade its schema, and say in one line, without the password, why a store cannot be used.

The database stack (SQLAlchemy, Alembic) is imported inside the functions: a serving worker never loads it.
"""

from __future__ import annotations

import asyncio

from gateway.settings import SettingsError


async def _migrate(uri: str) -> None:
    from gateway.store.database import create_engine, migrate

    engine = create_engine(uri)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def without_password(uri: str) -> str:
    """`uri` with the password of its user part masked, for messages and logs."""
    scheme, separator, rest = uri.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not at or ":" not in credentials:
        return uri
    return f"{scheme}{separator}{credentials.split(':', 1)[0]}:***@{location}"


def migrate_store(uri: str) -> None:
    """Create or upgrade the metadata schema at `uri` (serialised between processes); one line on failure."""
    from sqlalchemy.exc import SQLAlchemyError  # imported here: a serving worker never loads the database stack

    from gateway.store.database import DatabaseError

    try:
        asyncio.run(_migrate(uri))
    except DatabaseError as exc:
        raise SettingsError(f"backend store: {exc}") from None
    except (OSError, SQLAlchemyError) as exc:
        raise store_unusable(uri, exc) from None


def store_unusable(uri: str, exc: Exception) -> SettingsError:
    """One line for a database that refused or failed: the URI without its password, the first line of why."""
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return SettingsError(f"backend store '{without_password(uri)}' is unusable: {reason}")
