"""What every part of the tracking store shares: the engine, and looking up the rows others refer to."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store import schema as s
from gateway.store.database import probe
from gateway.store.errors import InvalidValue
from gateway.store.writes import GroupWriter, Reader
from gateway.tracking.store.values import ACTIVE, int_field, missing, no_run, not_found, possible_experiment_id


class StoreBase:
    """The metadata store over one async SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine, default_artifact_root: str, *, truncate_long_values: bool = True) -> None:
        self.engine = engine
        self.default_artifact_root = default_artifact_root
        self.truncate = truncate_long_values
        """Cut run param and tag values over MLflow's limits instead of refusing them (MLflow's default)."""
        self.writes = GroupWriter(engine)
        """Where the small, frequent writes (metrics, params, tags) are committed together."""
        self.reads = Reader(engine)
        """Where reads of many queries (run search, metric history) run in one hop off the event loop."""

    async def close(self) -> None:
        """Commit the writes still queued and close the writer's connection (before disposing the engine)."""
        await self.writes.close()
        self.reads.close()

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query."""
        await probe(self.engine, select(1))

    async def _experiment_row(self, conn: AsyncConnection, experiment_id: object) -> Any:
        if experiment_id is None or experiment_id == "":
            raise missing("experiment_id")
        try:
            numeric = int_field(experiment_id, "experiment_id")
        except InvalidValue:
            raise InvalidValue(
                f"Invalid experiment ID '{experiment_id}'. Experiment ID must be a valid integer."
            ) from None
        row = (
            (await conn.execute(select(s.experiments).where(s.experiments.c.experiment_id == numeric))).first()
            if possible_experiment_id(numeric)
            else None
        )
        if row is None:
            raise not_found(f"No Experiment with id={experiment_id} exists")
        return row

    async def _active_experiment(self, conn: AsyncConnection, experiment_id: object) -> Any:
        """The experiment's row; a deleted one is refused as MLflow refuses it (400, not 404)."""
        row = await self._experiment_row(conn, experiment_id)
        if row.lifecycle_stage != ACTIVE:
            raise InvalidValue(
                f"The experiment {row.experiment_id} must be in the 'active' state. "
                f"Current state is {row.lifecycle_stage}."
            )
        return row

    async def _run_row(self, conn: AsyncConnection, run_id: object) -> Any:
        if not isinstance(run_id, str) or not run_id:
            raise no_run(run_id)
        return found_run((await conn.execute(select(s.runs).where(s.runs.c.run_uuid == run_id))).first(), run_id)

    async def _active_run(self, conn: AsyncConnection, run_id: object) -> Any:
        return active_run(await self._run_row(conn, run_id))

    async def _model_row(self, conn: AsyncConnection, model_id: object, *, allow_deleted: bool = False) -> Any:
        """The logged model's row; a deleted one only with `allow_deleted`."""
        row = (
            (await conn.execute(select(s.logged_models).where(s.logged_models.c.model_id == model_id))).first()
            if checked_model_id(model_id)
            else None
        )
        return found_model(row, model_id, allow_deleted=allow_deleted)


def found_run(row: Any, run_id: object) -> Any:
    """The run's row, or MLflow's 404 when there is none."""
    if row is None:
        raise no_run(run_id)
    return row


def active_run(row: Any) -> Any:
    """The run's row when active; a deleted run is refused as MLflow refuses it (400)."""
    if row.lifecycle_stage != ACTIVE:
        raise InvalidValue(
            f"The run {row.run_uuid} must be in the 'active' state. Current state is {row.lifecycle_stage}."
        )
    return row


def checked_model_id(model_id: object) -> bool:
    """Whether `model_id` can name a logged model (a NUL character is a 400: PostgreSQL's text refuses it)."""
    if isinstance(model_id, str) and "\x00" in model_id:
        raise InvalidValue("Invalid value for parameter 'model_id': it contains a NUL character")
    return isinstance(model_id, str) and bool(model_id)


def found_model(row: Any, model_id: object, *, allow_deleted: bool = False) -> Any:
    """The logged model's row; a missing one, or a deleted one without `allow_deleted`, is MLflow's 404."""
    if row is None or (row.lifecycle_stage != ACTIVE and not allow_deleted):
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    return row
