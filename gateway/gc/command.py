"""`artifact-gateway gc`, with `mlflow gc`'s semantics: runs in the deleted state (all, those given
with --run-ids, or those deleted longer ago than --older-than), and experiments in the deleted
state (with every run, logged model and trace of theirs) are deleted for good, metadata and artifact
folders. Each run is deleted in its own short transaction that re-checks the deleted state, so a
server on the same store keeps serving and a run restored meanwhile is left alone. Each deletion is
an audit line (JSON on stderr). Exit codes: 0 done, 1 an artifact folder could not be deleted,
2 bad arguments or store."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import re
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.logs import configure, event
from gateway.store import schema as s
from repositories import ArtifactPath, ArtifactRepository, open_repository

_AGE = re.compile(r"^((?P<days>[.\d]+?)d)?((?P<hours>[.\d]+?)h)?((?P<minutes>[.\d]+?)m)?((?P<seconds>[.\d]+?)s)?$")
DELETED = "deleted"


class GcError(Exception):
    """A refused request (bad age, an id not in the deleted state); one line for the operator."""


@dataclass
class GcOptions:
    backend_store_uri: str
    artifacts_destination: str
    older_than: str | None = None
    experiment_ids: str | None = None
    run_ids: str | None = None
    dry_run: bool = False


def age_ms(text: str | None) -> int:
    """`30d`, `12h`, `1d2h3m4s` (MLflow's syntax) in milliseconds; 0 for none."""
    if not text:
        return 0
    match = _AGE.match(text)
    if match is None or not any(match.groupdict().values()):
        raise GcError(f"could not read an age from '{text}'; examples: 30d, 8h, 2d8h5m20s, 2m4s")
    parts = {name: float(value) for name, value in match.groupdict().items() if value}
    return int(datetime.timedelta(**parts).total_seconds() * 1000)


def _ids(text: str | None) -> list[str] | None:
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


class ArtifactDeleter:
    """Deletes an artifact folder through the repository adapters: `mlflow-artifacts:/` locations
    under the destination, `s3://`, `wasbs://` and local ones through their own repository."""

    def __init__(self, destination: str) -> None:
        self.destination = destination
        self._repositories: dict[str, ArtifactRepository] = {}

    async def _repository(self, root: str) -> ArtifactRepository:
        if root not in self._repositories:
            repository = open_repository(root)
            await repository.start()
            self._repositories[root] = repository
        return self._repositories[root]

    async def delete(self, location: str) -> None:
        parts = urlsplit(location)
        if parts.scheme == "mlflow-artifacts" or (
            parts.scheme in ("http", "https") and "/mlflow-artifacts/artifacts/" in parts.path
        ):
            path = unquote(
                parts.path.split("/mlflow-artifacts/artifacts/", 1)[-1]
                if parts.scheme != "mlflow-artifacts"
                else parts.path
            )
            repository, relative = await self._repository(self.destination), path.strip("/")
        elif parts.scheme in ("s3", "s3a", "wasbs", "wasb", "file", ""):
            head, _, last = location.rstrip("/").rpartition("/")
            if not last or not head:
                raise GcError(f"'{location}' is not a folder the gc can delete")
            repository, relative = await self._repository(head), unquote(last)
        else:
            raise GcError(f"artifact location scheme '{parts.scheme}' is not one the gateway deletes from")
        if not relative:
            raise GcError(f"'{location}' is the artifact root itself; it is not deleted")
        await repository.delete(ArtifactPath.parse(relative))

    async def close(self) -> None:
        for repository in self._repositories.values():
            with contextlib.suppress(Exception):
                await repository.close()


async def _select_targets(engine: AsyncEngine, options: GcOptions) -> tuple[list[int], list[str], list[str]]:
    """The experiments, runs and logged models to delete; GcError when an id given is not deletable."""
    older = age_ms(options.older_than)
    threshold = int(time.time() * 1000) - older
    run_ids, experiment_ids = _ids(options.run_ids), _ids(options.experiment_ids)
    e, r, m = s.experiments.c, s.runs.c, s.logged_models.c
    async with engine.connect() as conn:
        deleted_runs = set(
            (
                await conn.execute(select(r.run_uuid).where(r.lifecycle_stage == DELETED, r.deleted_time <= threshold))
            ).scalars()
        )
        if run_ids is not None:
            found = {
                row.run_uuid: row.lifecycle_stage
                for row in await conn.execute(select(r.run_uuid, r.lifecycle_stage).where(r.run_uuid.in_(run_ids)))
            }
            for run_id in run_ids:
                if run_id not in found:
                    raise GcError(f"run {run_id} does not exist")
                if found[run_id] != DELETED:
                    raise GcError(
                        f"run {run_id} is not in the deleted lifecycle stage; only deleted runs can be collected"
                    )
                if older and run_id not in deleted_runs:
                    raise GcError(f"run {run_id} is not older than {options.older_than}")
            runs = list(dict.fromkeys(run_ids))
        else:
            runs = sorted(deleted_runs)
        if experiment_ids is not None:
            numbers = []
            for text in experiment_ids:
                if not text.isdigit():
                    raise GcError(f"experiment id '{text}' is not a number")
                numbers.append(int(text))
            found_e = {
                row.experiment_id: row
                for row in await conn.execute(
                    select(e.experiment_id, e.lifecycle_stage, e.last_update_time).where(e.experiment_id.in_(numbers))
                )
            }
            for number in numbers:
                row = found_e.get(number)
                if row is None:
                    raise GcError(f"experiment {number} does not exist")
                if row.lifecycle_stage != DELETED:
                    raise GcError(
                        f"experiment {number} is not in the deleted lifecycle stage; "
                        "only deleted experiments can be collected"
                    )
                if older and row.last_update_time >= threshold:
                    raise GcError(f"experiment {number} is not older than {options.older_than}")
            experiments = list(dict.fromkeys(numbers))
        else:
            query = select(e.experiment_id).where(e.lifecycle_stage == DELETED)
            if older:
                query = query.where(e.last_update_time < threshold)
            experiments = list((await conn.execute(query.order_by(e.experiment_id))).scalars())
        if experiments:
            runs += [
                run
                for run in (await conn.execute(select(r.run_uuid).where(r.experiment_id.in_(experiments)))).scalars()
                if run not in runs
            ]
        model_query = select(m.model_id).where((m.lifecycle_stage == DELETED) & (m.last_updated_timestamp <= threshold))
        if experiments:
            model_query = select(m.model_id).where(
                ((m.lifecycle_stage == DELETED) & (m.last_updated_timestamp <= threshold))
                | m.experiment_id.in_(experiments)
            )
        models = list((await conn.execute(model_query)).scalars())
    return experiments, runs, models


async def _delete_run(engine: AsyncEngine, run_id: str, experiments: set[int]) -> str | None:
    """Delete the run's rows (its points explicitly, its other children by cascade) when it is still deleted, or its
    experiment is being collected; its artifact location, or None when it was left alone."""
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                select(s.runs.c.artifact_uri, s.runs.c.lifecycle_stage, s.runs.c.experiment_id)
                .where(s.runs.c.run_uuid == run_id)
                .with_for_update()
            )
        ).first()
        if row is None or (row.lifecycle_stage != DELETED and row.experiment_id not in experiments):
            return None
        await conn.execute(delete(s.logged_model_metrics).where(s.logged_model_metrics.c.run_uuid == run_id))
        # No foreign key cascades to the points on PostgreSQL (migration 0012); the row lock above keeps
        # a batch that is still writing them from committing after this.
        await conn.execute(delete(s.metrics).where(s.metrics.c.run_uuid == run_id))
        await conn.execute(delete(s.runs).where(s.runs.c.run_uuid == run_id))
        return str(row.artifact_uri)


async def _delete_model(engine: AsyncEngine, model_id: str) -> str | None:
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                select(s.logged_models.c.artifact_location)
                .where(s.logged_models.c.model_id == model_id)
                .with_for_update()
            )
        ).first()
        if row is None:
            return None
        await conn.execute(delete(s.run_model_inputs).where(s.run_model_inputs.c.model_id == model_id))
        await conn.execute(delete(s.logged_models).where(s.logged_models.c.model_id == model_id))
        return str(row.artifact_location)


async def _delete_experiment(engine: AsyncEngine, experiment_id: int) -> bool:
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                select(s.experiments.c.lifecycle_stage)
                .where(s.experiments.c.experiment_id == experiment_id)
                .with_for_update()
            )
        ).first()
        if row is None or row.lifecycle_stage != DELETED:
            return False
        if (
            await conn.execute(select(s.runs.c.run_uuid).where(s.runs.c.experiment_id == experiment_id).limit(1))
        ).first():
            return False  # a run was created meanwhile (the experiment restored and used): keep it
        if (
            await conn.execute(
                select(s.logged_models.c.model_id).where(s.logged_models.c.experiment_id == experiment_id).limit(1)
            )
        ).first():
            return False
        await conn.execute(delete(s.trace_info).where(s.trace_info.c.experiment_id == experiment_id))
        await conn.execute(delete(s.experiments).where(s.experiments.c.experiment_id == experiment_id))
        return True


async def collect(options: GcOptions, out: TextIO) -> int:
    from gateway.store.database import create_engine

    engine = create_engine(options.backend_store_uri)
    deleter = ArtifactDeleter(options.artifacts_destination)
    failures = 0
    try:
        experiments, runs, models = await _select_targets(engine, options)
        if options.dry_run:
            for run_id in runs:
                out.write(f"would delete run {run_id}\n")
            for model_id in models:
                out.write(f"would delete logged model {model_id}\n")
            for number in experiments:
                out.write(f"would delete experiment {number}\n")
            return 0
        collecting = set(experiments)
        for kind, ids in (("run", runs), ("logged_model", models)):
            for key in ids:
                location = await (_delete_run(engine, key, collecting) if kind == "run" else _delete_model(engine, key))
                if location is None:
                    continue
                try:
                    await deleter.delete(location)
                    artifacts = "deleted"
                except Exception as exc:
                    failures += 1
                    artifacts = f"left in place: {exc}"
                fields: dict[str, Any] = {f"{kind}_id": key, "artifacts": artifacts}
                event("audit", action=f"gc_delete_{kind}", path=location, **fields)
                out.write(f"{kind.replace('_', ' ')} {key} permanently deleted (artifacts {artifacts})\n")
        for number in experiments:
            if await _delete_experiment(engine, number):
                event("audit", action="gc_delete_experiment", path="", experiment_id=str(number))
                out.write(f"experiment {number} permanently deleted\n")
        return 1 if failures else 0
    finally:
        await deleter.close()
        await engine.dispose()


async def _run(options: GcOptions, out: TextIO) -> int:
    try:
        return await collect(options, out)
    except GcError as exc:
        out.write(f"artifact-gateway: error: {exc}\n")
        return 2
    except (SQLAlchemyError, OSError) as exc:
        from gateway.store.startup import store_unusable

        out.write(f"artifact-gateway: error: {store_unusable(options.backend_store_uri, exc)}\n")
        return 2


def main(options: GcOptions, out: TextIO = sys.stdout) -> int:
    configure("info")
    return asyncio.run(_run(options, out))


__all__ = ["GcError", "GcOptions", "age_ms", "main"]
