"""An MLflow tracking database (SQLite or PostgreSQL, any schema from MLflow 2.0 to 3.17) read with
SQLAlchemy. Tables and columns are reflected: what an older schema lacks reads as absent, never fails."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import MetaData, Table, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.import_mlflow.rows import (
    LOGGED_MODEL_STATUSES,
    SPANS_LOCATION,
    TRACKING_STORE,
    Inventory,
    Point,
    Row,
    Rows,
    SourceError,
    assessment_content,
    latest_of,
    metric_row,
    model_version_record,
    point,
)
from gateway.import_mlflow.spans import span_row

_IN_CHUNK = 500  # ids per IN (...) list
_MODEL_URI = re.compile(r"^models:/(m-[0-9a-f]{32})$")
_TRACE_STATES = {"TRACE_STATUS_UNSPECIFIED": "STATE_UNSPECIFIED"}


def source_engine(uri: str) -> AsyncEngine:
    """An engine on the MLflow database at `uri` (read only by intent; nothing is written)."""
    try:
        url = make_url(uri)
    except ArgumentError:
        raise SourceError(f"'{uri}' is neither a database URI nor an MLflow file store directory") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        from pathlib import Path

        if not url.database or not Path(url.database).is_file():
            raise SourceError(f"the SQLite database {url.database or '(none)'} does not exist")
        return create_async_engine(url.set(drivername="sqlite+aiosqlite"))
    if backend in ("postgresql", "postgres"):
        return create_async_engine(url.set(drivername="postgresql+asyncpg"))
    raise SourceError(
        f"unsupported source scheme '{url.drivername}': use sqlite:///mlflow.db, postgresql://... or ./mlruns"
    )


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[at : at + _IN_CHUNK] for at in range(0, len(items), _IN_CHUNK)]


class SqlSource:
    """An MLflow SQL store."""

    def __init__(self, engine: AsyncEngine, tables: dict[str, Table], description: str) -> None:
        self.engine = engine
        self.tables = tables
        self.description = description

    @classmethod
    async def open(cls, uri: str) -> SqlSource:
        from gateway.store.startup import without_password

        engine = source_engine(uri)
        metadata = MetaData()
        try:
            async with engine.connect() as conn:
                await conn.run_sync(lambda sync: metadata.reflect(sync))
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise SourceError(f"cannot read {without_password(uri)}: {reason}") from None
        tables = dict(metadata.tables)
        if not {"experiments", "runs", "metrics", "alembic_version"} <= set(tables):
            await engine.dispose()
            raise SourceError(
                f"{without_password(uri)} is not an MLflow tracking database (no experiments/runs tables)"
            )
        return cls(engine, tables, without_password(uri))

    async def close(self) -> None:
        await self.engine.dispose()

    def _has(self, table: str, column: str | None = None) -> bool:
        return table in self.tables and (column is None or column in self.tables[table].c)

    async def _rows(self, table: str, where: Any = None, *, order: Any = None) -> list[Row]:
        if table not in self.tables:
            return []
        query = select(self.tables[table])
        if where is not None:
            query = query.where(where(self.tables[table].c))
        if order is not None:
            query = query.order_by(*order(self.tables[table].c))
        async with self.engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]

    async def _rows_in(self, table: str, column: str, ids: list[Any], extra: Any = None) -> list[Row]:
        found: list[Row] = []
        if not self._has(table, column):
            return found
        for chunk in _chunks(ids):
            found += await self._rows(
                table, lambda c, chunk=chunk: c[column].in_(chunk) & (extra(c) if extra is not None else True)
            )
        return found

    async def experiments(self) -> Rows:
        rows = await self._rows("experiments", order=lambda c: [c.experiment_id])
        return {
            "experiments": [
                {
                    "experiment_id": int(row["experiment_id"]),
                    "name": row["name"],
                    "artifact_location": row.get("artifact_location") or "",
                    "lifecycle_stage": row.get("lifecycle_stage") or "active",
                    "creation_time": row.get("creation_time") or 0,
                    "last_update_time": row.get("last_update_time") or row.get("creation_time") or 0,
                }
                for row in rows
            ],
            "experiment_tags": [
                {"experiment_id": int(row["experiment_id"]), "key": row["key"], "value": row["value"] or ""}
                for row in await self._rows("experiment_tags")
            ],
        }

    async def logged_models(self, experiment_ids: list[int]) -> Rows:
        if "logged_models" not in self.tables:
            return {}
        models = await self._rows_in("logged_models", "experiment_id", experiment_ids)
        ids = [row["model_id"] for row in models]
        return {
            "logged_models": [
                {
                    "model_id": row["model_id"],
                    "experiment_id": int(row["experiment_id"]),
                    "name": row["name"],
                    "artifact_location": row["artifact_location"],
                    "creation_timestamp": row["creation_timestamp_ms"],
                    "last_updated_timestamp": row["last_updated_timestamp_ms"],
                    "status": LOGGED_MODEL_STATUSES.get(int(row["status"] or 0), "LOGGED_MODEL_STATUS_UNSPECIFIED"),
                    "status_message": row.get("status_message"),
                    "lifecycle_stage": row.get("lifecycle_stage") or "active",
                    "model_type": row.get("model_type"),
                    "source_run_id": row.get("source_run_id"),
                }
                for row in models
            ],
            "logged_model_tags": [
                {"model_id": row["model_id"], "key": row["tag_key"], "value": row["tag_value"]}
                for row in await self._rows_in("logged_model_tags", "model_id", ids)
            ],
            "logged_model_params": [
                {"model_id": row["model_id"], "key": row["param_key"], "value": row["param_value"]}
                for row in await self._rows_in("logged_model_params", "model_id", ids)
            ],
        }

    async def run_ids(self, experiment_ids: list[int]) -> list[str]:
        runs = self.tables["runs"]
        found: list[str] = []
        async with self.engine.connect() as conn:
            for chunk in [experiment_ids[at : at + _IN_CHUNK] for at in range(0, len(experiment_ids), _IN_CHUNK)]:
                query = select(runs.c.run_uuid).where(runs.c.experiment_id.in_(chunk)).order_by(runs.c.run_uuid)
                found += list((await conn.execute(query)).scalars())
        return found

    async def runs(self, run_ids: list[str]) -> Rows:
        runs = await self._rows_in("runs", "run_uuid", run_ids)
        tags = await self._rows_in("tags", "run_uuid", run_ids)
        names = {tag["run_uuid"]: tag["value"] for tag in tags if tag["key"] == "mlflow.runName"}
        result: Rows = {
            "runs": [
                {
                    "run_uuid": row["run_uuid"],
                    "experiment_id": int(row["experiment_id"]),
                    "name": row.get("name") or names.get(row["run_uuid"]) or "",
                    "user_id": row.get("user_id") or "",
                    "status": row.get("status") or "FINISHED",
                    "start_time": row.get("start_time") or 0,
                    "end_time": row.get("end_time"),
                    "lifecycle_stage": row.get("lifecycle_stage") or "active",
                    "artifact_uri": row.get("artifact_uri") or "",
                    "deleted_time": row.get("deleted_time"),
                }
                for row in runs
            ],
            "params": [
                {"run_uuid": row["run_uuid"], "key": row["key"], "value": row["value"] or ""}
                for row in await self._rows_in("params", "run_uuid", run_ids)
            ],
            "tags": [{"run_uuid": row["run_uuid"], "key": row["key"], "value": row["value"] or ""} for row in tags],
        }
        if "latest_metrics" in self.tables:
            result["latest_metrics"] = [
                metric_row(
                    row["run_uuid"],
                    row["key"],
                    row["value"],
                    row["timestamp"] or 0,
                    row["step"] or 0,
                    bool(row.get("is_nan")),
                )
                for row in await self._rows_in("latest_metrics", "run_uuid", run_ids)
            ]
        else:  # MLflow before 1.x kept no latest values: they are the points' maximum
            points = [point async for batch in self.metric_points(run_ids, 100_000) for point in batch]
            result["latest_metrics"] = latest_of(points)
        result.update(await self._inputs(run_ids))
        result["logged_model_metrics"] = [
            {
                **{
                    k: v
                    for k, v in metric_row(
                        row["run_id"],
                        row["metric_name"],
                        row["metric_value"],
                        row["metric_timestamp_ms"],
                        row["metric_step"],
                    ).items()
                },
                "model_id": row["model_id"],
                "experiment_id": int(row["experiment_id"]),
                "dataset_name": row.get("dataset_name"),
                "dataset_digest": row.get("dataset_digest"),
            }
            for row in await self._rows_in("logged_model_metrics", "run_id", run_ids)
        ]
        return result

    async def _inputs(self, run_ids: list[str]) -> Rows:
        if not self._has("inputs"):
            return {}
        edges = await self._rows_in("inputs", "destination_id", run_ids, lambda c: c.source_type == "DATASET")
        edges += await self._rows_in(
            "inputs", "source_id", run_ids, lambda c: c.destination_type.in_(["MODEL_OUTPUT", "MODEL_INPUT"])
        )
        datasets = {
            row["dataset_uuid"]: row
            for row in await self._rows_in(
                "datasets", "dataset_uuid", [e["source_id"] for e in edges if e["source_type"] == "DATASET"]
            )
        }
        tags: dict[str, list[dict[str, str]]] = {}
        for tag in await self._rows_in("input_tags", "input_uuid", [e["input_uuid"] for e in edges]):
            tags.setdefault(tag["input_uuid"], []).append({"key": tag["name"], "value": tag["value"]})
        inputs: dict[tuple[str, str, str], Row] = {}
        outputs, model_inputs = [], []
        for edge in edges:
            if edge["source_type"] == "DATASET" and edge["destination_type"] == "RUN":
                dataset = datasets.get(edge["source_id"])
                if dataset is None:
                    continue
                key = (edge["destination_id"], dataset["name"], dataset["digest"])
                inputs[key] = {
                    "run_uuid": edge["destination_id"],
                    "name": dataset["name"],
                    "digest": dataset["digest"],
                    "source_type": dataset["dataset_source_type"],
                    "source": dataset["dataset_source"],
                    "schema": dataset.get("dataset_schema"),
                    "profile": dataset.get("dataset_profile"),
                    "tags": json.dumps(tags.get(edge["input_uuid"], [])),
                }
            elif edge["destination_type"] == "MODEL_OUTPUT":
                outputs.append(
                    {"run_uuid": edge["source_id"], "model_id": edge["destination_id"], "step": edge.get("step") or 0}
                )
            elif edge["destination_type"] == "MODEL_INPUT":
                model_inputs.append({"run_uuid": edge["source_id"], "model_id": edge["destination_id"]})
        return {"run_inputs": list(inputs.values()), "run_outputs": outputs, "run_model_inputs": model_inputs}

    async def metric_points(self, run_ids: list[str], batch: int) -> AsyncIterator[list[Point]]:
        """Read through the driver on SQLite (SQLAlchemy's row objects would cost more than the reading)."""
        nan = "is_nan" if "is_nan" in self.tables["metrics"].c else "0"
        for chunk in _chunks(run_ids):
            marks = ", ".join("?" for _ in chunk)
            async with self.engine.connect() as conn:
                if conn.dialect.name == "sqlite":
                    driver: Any = (await conn.get_raw_connection()).driver_connection
                    cursor = await driver.execute(
                        f"SELECT run_uuid, key, value, {nan}, timestamp, step FROM metrics "  # noqa: S608 - fixed names
                        f"WHERE run_uuid IN ({marks})",
                        chunk,
                    )
                    while rows := await cursor.fetchmany(batch):
                        yield [point(row[0], row[1], row[2], row[4], row[5], row[3]) for row in rows]
                    await cursor.close()
                    continue
                metrics = self.tables["metrics"]
                columns = [metrics.c.run_uuid, metrics.c.key, metrics.c.value, metrics.c.timestamp, metrics.c.step]
                if nan != "0":
                    columns.append(metrics.c.is_nan)
                query = select(*columns).where(metrics.c.run_uuid.in_(chunk)).execution_options(yield_per=batch)
                result = await conn.stream(query)
                async for partition in result.partitions(batch):
                    yield [point(r[0], r[1], r[2], r[3], r[4], bool(r[5]) if len(r) > 5 else False) for r in partition]

    async def registered_models(self) -> list[Rows]:
        if "registered_models" not in self.tables:
            return []
        by_name: dict[str, Rows] = {}
        for row in await self._rows("registered_models"):
            by_name[row["name"]] = {
                "registered_models": [
                    {
                        "name": row["name"],
                        "creation_time": row.get("creation_time") or 0,
                        "last_updated_time": row.get("last_updated_time") or row.get("creation_time") or 0,
                        "description": row.get("description"),
                    }
                ],
                "registered_model_tags": [],
                "model_versions": [],
                "model_version_tags": [],
                "registered_model_aliases": [],
                "deleted_versions": [],
            }
        for row in await self._rows("registered_model_tags"):
            if row["name"] in by_name:
                by_name[row["name"]]["registered_model_tags"].append(
                    {"name": row["name"], "key": row["key"], "value": row["value"] or ""}
                )
        for row in await self._rows("model_versions"):
            model = by_name.get(row["name"])
            if model is None:
                continue
            if row.get("current_stage") == "Deleted_Internal":  # deleted: its number is never reused
                model["deleted_versions"].append({"version": int(row["version"])})
                continue
            match = _MODEL_URI.match(row.get("source") or "")
            model["model_versions"].append(
                model_version_record(
                    row,
                    row["name"],
                    int(row["version"]),
                    row.get("creation_time") or 0,
                    row.get("last_updated_time") or row.get("creation_time") or 0,
                    row.get("model_id") or (match[1] if match else None),
                )
            )
        versions = {(v["name"], v["version"]) for m in by_name.values() for v in m["model_versions"]}
        for row in await self._rows("model_version_tags"):
            if (row["name"], int(row["version"])) in versions:
                by_name[row["name"]]["model_version_tags"].append(
                    {
                        "name": row["name"],
                        "version": int(row["version"]),
                        "key": row["key"],
                        "value": row["value"] or "",
                    }
                )
        for row in await self._rows("registered_model_aliases"):
            if (row["name"], int(row["version"])) in versions:
                by_name[row["name"]]["registered_model_aliases"].append(
                    {"name": row["name"], "alias": row["alias"], "version": int(row["version"])}
                )
        return list(by_name.values())

    async def trace_ids(self, experiment_ids: list[int]) -> list[str]:
        if "trace_info" not in self.tables:
            return []
        return [row["request_id"] for row in await self._rows_in("trace_info", "experiment_id", experiment_ids)]

    async def traces(self, trace_ids: list[str]) -> Rows:
        infos = await self._rows_in("trace_info", "request_id", trace_ids)
        spans = [
            span_row(row["trace_id"], row["content"]) for row in await self._rows_in("spans", "trace_id", trace_ids)
        ]
        tags = [
            {"trace_id": row["request_id"], "key": row["key"], "value": row["value"] or ""}
            for row in await self._rows_in("trace_tags", "request_id", trace_ids)
        ]
        with_spans = {span["trace_id"] for span in spans}
        tags = [tag for tag in tags if not (tag["key"] == SPANS_LOCATION and tag["trace_id"] in with_spans)]
        tags += [{"trace_id": trace_id, "key": SPANS_LOCATION, "value": TRACKING_STORE} for trace_id in with_spans]
        return {
            "trace_info": [
                {
                    "trace_id": row["request_id"],
                    "experiment_id": int(row["experiment_id"]),
                    "request_time": row["timestamp_ms"],
                    "execution_duration": row.get("execution_time_ms"),
                    "state": _TRACE_STATES.get(row["status"], row["status"]),
                    "request_preview": row.get("request_preview"),
                    "response_preview": row.get("response_preview"),
                    "client_request_id": row.get("client_request_id"),
                }
                for row in infos
            ],
            "trace_tags": tags,
            "trace_request_metadata": [
                {"trace_id": row["request_id"], "key": row["key"], "value": row["value"] or ""}
                for row in await self._rows_in("trace_request_metadata", "request_id", trace_ids)
            ],
            "spans": spans,
            "assessments": [
                {
                    "assessment_id": row["assessment_id"],
                    "trace_id": row["trace_id"],
                    "name": row["name"],
                    "create_time": row["created_timestamp"],
                    "last_update_time": row["last_updated_timestamp"],
                    "content": assessment_content(row),
                }
                for row in await self._rows_in("assessments", "trace_id", trace_ids)
            ],
        }

    async def _count(self, table: str, where: Any = None) -> int:
        if table not in self.tables:
            return 0
        query = select(func.count()).select_from(self.tables[table])
        if where is not None:
            query = query.where(where(self.tables[table].c))
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def inventory(self) -> Inventory:
        found = Inventory()
        for entity, table, where in (
            ("experiments", "experiments", None),
            ("experiment tags", "experiment_tags", None),
            ("runs", "runs", None),
            ("params", "params", None),
            ("run tags", "tags", None),
            ("metric points", "metrics", None),
            ("logged models", "logged_models", None),
            ("registered models", "registered_models", None),
            ("model versions", "model_versions", lambda c: c.current_stage != "Deleted_Internal"),
            ("aliases", "registered_model_aliases", None),
            ("traces", "trace_info", None),
            ("spans", "spans", None),
            ("assessments", "assessments", None),
        ):
            found.add(entity, await self._count(table, where))
        found.add(
            "dataset inputs",
            await self._count("inputs", lambda c: (c.source_type == "DATASET") & (c.destination_type == "RUN")),
        )
        return found
