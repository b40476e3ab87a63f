"""Writing a source's rows into the gateway's store: every insert is `ON CONFLICT DO NOTHING`, each
batch of runs (with all their points) or traces or each registered model is one transaction, so a
run is either wholly there or not at all, and a second import after a crash continues where it stopped."""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.import_mlflow.rows import Inventory, Point, Row, Rows
from gateway.store import schema as s
from gateway.store.sql import insert_statement

ORDER = (
    "experiments",
    "experiment_tags",
    "logged_models",
    "logged_model_tags",
    "logged_model_params",
    "runs",
    "params",
    "tags",
    "latest_metrics",
    "run_inputs",
    "run_outputs",
    "run_model_inputs",
    "logged_model_metrics",
    "trace_info",
    "trace_tags",
    "trace_request_metadata",
    "spans",
    "assessments",
)
_ROWS_PER_STATEMENT = 5_000  # executemany chunks: bounded memory per statement


async def insert_rows(conn: AsyncConnection, table_name: str, rows: list[Row]) -> None:
    """Insert `rows` into `table_name`, leaving any row whose key is already there as it is."""
    if not rows:
        return
    table = s.metadata.tables[table_name]
    statement = insert_statement(conn, table).on_conflict_do_nothing()
    for at in range(0, len(rows), _ROWS_PER_STATEMENT):
        await conn.execute(statement, rows[at : at + _ROWS_PER_STATEMENT])


POINT_COLUMNS = ("run_uuid", "key", "value", "is_nan", "timestamp", "step")
_COLUMN_LIST = ", ".join(POINT_COLUMNS)  # the SQL below is built from these fixed names, never from input
_POINTS_SQLITE = f"INSERT INTO metrics ({_COLUMN_LIST}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"  # noqa: S608
_POINTS_STAGING = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS import_points (run_uuid VARCHAR(32), key VARCHAR(250), "
    "value DOUBLE PRECISION, is_nan BOOLEAN, timestamp BIGINT, step BIGINT) ON COMMIT DELETE ROWS"
)
_POINTS_FROM_STAGING = (
    f"INSERT INTO metrics ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM import_points ON CONFLICT DO NOTHING"  # noqa: S608
)


async def insert_points(conn: AsyncConnection, records: list[Point]) -> None:
    """Metric points in bulk, through the driver itself (SQLAlchemy's per-row work would cost more than
    the database's): one executemany on SQLite; COPY into a staging table, then one INSERT ... SELECT, on
    PostgreSQL. A point already there is left as it is."""
    if not records:
        return
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if conn.dialect.name == "postgresql":
        from asyncpg.exceptions import UniqueViolationError

        # the batch's runs are new, so its points are too: COPY them straight in; a point already there
        # (another import of the same source at once) rolls back to the savepoint and goes the careful way
        with contextlib.suppress(UniqueViolationError):
            async with conn.begin_nested():
                await driver.copy_records_to_table("metrics", records=records, columns=list(POINT_COLUMNS))
            return
        await driver.execute(_POINTS_STAGING)
        await driver.copy_records_to_table("import_points", records=records, columns=list(POINT_COLUMNS))
        await driver.execute(_POINTS_FROM_STAGING)
        await driver.execute("TRUNCATE import_points")
    else:
        await driver.executemany(_POINTS_SQLITE, records)


async def write(conn: AsyncConnection, rows: Rows) -> None:
    """Every table of `rows`, in foreign-key order; a link to a logged model the store lacks is left out
    (MLflow keeps links to any id; the gateway's are foreign keys)."""
    linked = {row["model_id"] for name in ("run_model_inputs", "logged_model_metrics") for row in rows.get(name, [])}
    if linked:
        known = set(
            (
                await conn.execute(select(s.logged_models.c.model_id).where(s.logged_models.c.model_id.in_(linked)))
            ).scalars()
        )
        for name in ("run_model_inputs", "logged_model_metrics"):
            if name in rows:
                rows[name] = [row for row in rows[name] if row["model_id"] in known]
    for name in ORDER:
        await insert_rows(conn, name, rows.get(name, []))


async def write_registered_model(conn: AsyncConnection, model: Rows) -> bool:
    """One registered model with its versions, tags and aliases; False when a model of that name is there."""
    row = model["registered_models"][0]
    numbers = [v["version"] for v in model["model_versions"]] + [
        v["version"] for v in model.get("deleted_versions", [])
    ]
    result = await conn.execute(
        insert_statement(conn, s.registered_models)
        .values(**row, next_version=max(numbers, default=0) + 1)
        .on_conflict_do_nothing()
        .returning(s.registered_models.c.registered_model_id)
    )
    model_id = result.scalar()
    if model_id is None:
        return False
    for name in ("model_versions", "model_version_tags", "registered_model_tags", "registered_model_aliases"):
        await insert_rows(
            conn,
            name,
            [
                {**{k: v for k, v in item.items() if k != "name"}, "registered_model_id": model_id}
                for item in model[name]
            ],
        )
    return True


async def advance_experiment_ids(engine: AsyncEngine) -> None:
    """On PostgreSQL, move the experiments' id sequence past the imported ids (SQLite takes max + 1 itself)."""
    if engine.dialect.name != "postgresql":
        return
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('experiments', 'experiment_id'), "
                "GREATEST((SELECT COALESCE(MAX(experiment_id), 0) FROM experiments), 1))"
            )
        )


async def target_inventory(engine: AsyncEngine, experiment_ids: list[int], model_names: list[str]) -> Inventory:
    """How many of each entity the store holds for these experiments and registered models."""
    found = Inventory()
    runs = select(s.runs.c.run_uuid).where(s.runs.c.experiment_id.in_(experiment_ids))
    traces = select(s.trace_info.c.trace_id).where(s.trace_info.c.experiment_id.in_(experiment_ids))
    models = select(s.registered_models.c.registered_model_id).where(s.registered_models.c.name.in_(model_names))
    queries: list[tuple[str, Any, Any]] = [
        ("experiments", s.experiments, s.experiments.c.experiment_id.in_(experiment_ids)),
        ("experiment tags", s.experiment_tags, s.experiment_tags.c.experiment_id.in_(experiment_ids)),
        ("runs", s.runs, s.runs.c.experiment_id.in_(experiment_ids)),
        ("params", s.params, s.params.c.run_uuid.in_(runs)),
        ("run tags", s.tags, s.tags.c.run_uuid.in_(runs)),
        ("metric points", s.metrics, s.metrics.c.run_uuid.in_(runs)),
        ("dataset inputs", s.run_inputs, s.run_inputs.c.run_uuid.in_(runs)),
        ("logged models", s.logged_models, s.logged_models.c.experiment_id.in_(experiment_ids)),
        ("registered models", s.registered_models, s.registered_models.c.name.in_(model_names)),
        ("model versions", s.model_versions, s.model_versions.c.registered_model_id.in_(models)),
        ("aliases", s.registered_model_aliases, s.registered_model_aliases.c.registered_model_id.in_(models)),
        ("traces", s.trace_info, s.trace_info.c.experiment_id.in_(experiment_ids)),
        ("spans", s.spans, s.spans.c.trace_id.in_(traces)),
        ("assessments", s.assessments, s.assessments.c.trace_id.in_(traces)),
    ]
    async with engine.connect() as conn:
        for entity, table, where in queries:
            found.add(
                entity, int((await conn.execute(select(func.count()).select_from(table).where(where))).scalar_one())
            )
    return found


async def history(engine: AsyncEngine, run_id: str) -> list[tuple[Any, ...]]:
    """A run's metric points, sorted, for the point-by-point comparison."""
    m = s.metrics.c
    async with engine.connect() as conn:
        rows = await conn.execute(select(m.key, m.step, m.timestamp, m.value, m.is_nan).where(m.run_uuid == run_id))
        return sorted((r.key, r.step, r.timestamp, r.value, bool(r.is_nan)) for r in rows)
