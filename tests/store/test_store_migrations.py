"""Migrations: several processes starting at once on a fresh database all succeed, once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from gateway.store.database import async_url, create_engine
from tests.postgres_server import create_database

MIGRATE = """
import asyncio, sys
from gateway.store.database import create_engine, migrate
async def main():
    engine = create_engine(sys.argv[1])
    await migrate(engine)
    await engine.dispose()
asyncio.run(main())
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        (tmp_path / "deep" / "dir").mkdir(parents=True)
        return f"sqlite:///{tmp_path / 'deep' / 'dir' / 'fresh.db'}"
    return create_database(request.getfixturevalue("postgres_dsn"), f"m{uuid.uuid4().hex[:12]}")


def test_concurrent_migrations_all_succeed(fresh_uri: str) -> None:
    processes = [subprocess.Popen([sys.executable, "-c", MIGRATE, fresh_uri], stderr=subprocess.PIPE) for _ in range(4)]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()[-2000:]

    async def versions() -> list[str]:
        engine = create_engine(fresh_uri)
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        await engine.dispose()
        return list(rows)

    assert asyncio.run(versions()) == ["0012"]


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("mysql://x/y", "unsupported backend store"),
        ("sqlite://", "in-memory"),
        ("not a uri", "not a database URI"),
    ],
)
def test_unusable_uris_are_refused(uri: str, fragment: str) -> None:
    from gateway.store.database import DatabaseError

    with pytest.raises(DatabaseError, match=fragment):
        async_url(uri)


def test_migrations_build_exactly_the_declared_schema(fresh_uri: str) -> None:
    """Alembic's autogenerate finds no difference between the migrated database and gateway.store.schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from gateway.store.schema import metadata

    def declared_here(dialect: str) -> Callable[..., bool]:
        """Compare only what is declared for this dialect: a constraint declared with `ddl_if` for another
        (the points' foreign key is SQLite's only) is left out; SQLAlchemy keeps the condition in
        `_ddl_if`, and Alembic's comparison does not read it."""

        def declared(item: object, name: object, kind: object, reflected: bool, other: object) -> bool:
            condition = getattr(item, "_ddl_if", None)
            return reflected or condition is None or condition.dialect in (None, dialect)

        return declared

    subprocess.run([sys.executable, "-c", MIGRATE, fresh_uri], check=True, timeout=120)

    async def differences() -> list[object]:
        engine = create_engine(fresh_uri)
        async with engine.connect() as conn:
            found = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"include_object": declared_here(sync.dialect.name)}),
                    metadata,
                )
            )
        await engine.dispose()
        return list(found)

    assert asyncio.run(differences()) == []

    async def points_foreign_keys() -> list[str]:
        engine = create_engine(fresh_uri)
        async with engine.connect() as conn:
            found = await conn.run_sync(lambda sync: inspect(sync).get_foreign_keys("metrics"))
        await engine.dispose()
        return [fk["referred_table"] for fk in found]

    # Alembic's comparison passes over a constraint it is told to leave out, whether it is there or not.
    assert asyncio.run(points_foreign_keys()) == (["runs"] if fresh_uri.startswith("sqlite") else [])


def test_points_stored_twice_become_one_and_their_model_links_are_kept(fresh_uri: str) -> None:
    """Before 0005, log_model's re-sent metrics were stored again; the migration keeps each point once
    and turns the copies that named a logged model into links."""
    from gateway.store.database import migrate

    point = "'r1', 'acc', 3, 1000, 0.5, FALSE"
    statements = [
        "INSERT INTO experiments VALUES (1, 'e', 'mlflow-artifacts:/1', 'active', 1, 1)",
        "INSERT INTO runs VALUES ('r1', 1, 'run', 'u', 'FINISHED', 1, 2, 'active', 'mlflow-artifacts:/1/r1', NULL)",
        "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp, "
        "last_updated_timestamp, status, lifecycle_stage) VALUES ('m-1', 1, 'm', 'x', 1, 1, 'READY', 'active')",
        f"INSERT INTO metrics (run_uuid, key, step, timestamp, value, is_nan) VALUES ({point})",
        f"INSERT INTO metrics (run_uuid, key, step, timestamp, value, is_nan) VALUES ({point})",
        f"INSERT INTO metrics (run_uuid, key, step, timestamp, value, is_nan, model_id) VALUES ({point}, 'm-1')",
        "INSERT INTO metrics (run_uuid, key, step, timestamp, value, is_nan) VALUES ('r1', 'acc', 4, 1001, 0.6, FALSE)",
    ]

    async def scenario() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        engine = create_engine(fresh_uri)
        await migrate(engine, "0004")
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
        await migrate(engine)
        async with engine.connect() as conn:
            points = (await conn.execute(text("SELECT step, value FROM metrics ORDER BY step"))).all()
            links = (
                await conn.execute(
                    text("SELECT model_id, key, step, run_uuid, experiment_id FROM logged_model_metrics")
                )
            ).all()
        await engine.dispose()
        return [tuple(row) for row in points], [tuple(row) for row in links]

    points, links = asyncio.run(scenario())
    assert points == [(3, 0.5), (4, 0.6)]
    assert links == [("m-1", "acc", 3, "r1", 1)]


def test_a_sqlite_store_in_a_missing_directory_is_refused_not_created(tmp_path: Path) -> None:
    """A typo in the URI must not create a directory tree somewhere: MLflow refuses it too."""
    from gateway.store.database import DatabaseError, migrate

    missing = tmp_path / "no" / "such" / "dir"
    engine = create_engine(f"sqlite:///{missing / 'x.db'}")
    with pytest.raises(DatabaseError, match=f"the directory {missing} of the SQLite database does not exist"):
        asyncio.run(migrate(engine))
    assert not (tmp_path / "no").exists()
