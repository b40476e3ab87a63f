"""Experiments, runs and logged models: the operations the tracking API needs, in MLflow's shapes.

Every method validates its input and raises `ApiError` with MLflow's error codes, so the HTTP layer
only parses and serialises. Times are milliseconds since the epoch, as MLflow sends them.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, insert, not_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from gateway.http.errors import ApiError
from gateway.store import schema as s
from gateway.tracking.limits import (
    MAX_BATCH_METRICS,
    MAX_BATCH_PARAMS,
    MAX_BATCH_TAGS,
    MAX_BATCH_TOTAL,
    MAX_KEY,
    MAX_PARAM_VALUE,
    MAX_SEARCH_RESULTS,
    MAX_TAG_VALUE,
    MODEL_STATUSES,
    RUN_STATUSES,
)
from gateway.tracking.search_filter import Comparison, InvalidFilter, OrderBy, parse_filter, parse_order_by

ACTIVE, DELETED = "active", "deleted"
DEFAULT_EXPERIMENT_ID = 0
_IN_BATCH = 500
RUN_NAME_TAG = "mlflow.runName"
_ADJECTIVES = "able bold calm clever eager fair gentle happy keen lucid merry noble polite quick rare sunny".split()
_NOUNS = "ant bear cat colt crane deer dove eel finch fox goat hawk lark lynx owl pug ram seal toad wolf".split()


def _run_name() -> str:
    """A memorable default run name, like MLflow's ('bold-owl-42'); not a secret."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(1, 999)}"  # noqa: S311


def now_ms() -> int:
    return int(time.time() * 1000)


def _no_run(run_id: object) -> ApiError:
    if not isinstance(run_id, str) or not run_id:
        return ApiError.invalid("Missing value for required parameter 'run_id'")
    return not_found(f"Run with id={run_id} not found")


def not_found(what: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", what)


def _number(value: float) -> float | str:
    """protobuf's JSON for a double: NaN and infinities are strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


MAX_OFFSET = 1 << 53
"""Far beyond any real page; a forged token's huge offset must be a 400, not overflow the database's OFFSET."""


def _page(token: str | None) -> int:
    if not token:
        return 0
    if not isinstance(token, str):
        raise ApiError.invalid("Invalid page_token: pass back the next_page_token of the previous page")
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        offset = None
    if not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise ApiError.invalid("Invalid page_token: pass back the next_page_token of the previous page")
    return offset


def offset_token(offset: int) -> str:
    """The page token that starts a listing at `offset`, as `next_page_token` carries it."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def check_key(key: object, field: str = "key") -> str:
    if not isinstance(key, str) or not key:
        raise ApiError.invalid(f"Missing value for required parameter '{field}'")
    if len(key) > MAX_KEY:
        raise ApiError.invalid(f"'{field}' '{key[:50]}...' is longer than {MAX_KEY} characters")
    if key.startswith("/") or ".." in key.split("/"):
        raise ApiError.invalid(f"Invalid value '{key}' for parameter '{field}': not a safe name")
    return key


def check_value(value: object, limit: int, field: str) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApiError.invalid(f"'{field}' must be a string")
    if len(value) > limit:
        raise ApiError.invalid(f"'{field}' is longer than {limit} characters")
    return value


def metric_value(value: object) -> float:
    if isinstance(value, bool) or value is None:
        raise ApiError.invalid("Missing value for required parameter 'value' (a number)")
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an integer beyond any double
            raise ApiError.invalid(f"Invalid metric value {value}: out of the range of a double") from None
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return float(value.replace("Infinity", "inf"))
    raise ApiError.invalid(f"Invalid metric value {value!r}: must be a number")


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def int_field(value: object, field: str, *, default: int | None = None) -> int:
    if value is None or value == "":
        if default is None:
            raise ApiError.invalid(f"Missing value for required parameter '{field}'")
        return default
    if isinstance(value, bool):
        raise ApiError.invalid(f"'{field}' must be an integer")
    try:
        number: int = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise ApiError.invalid(f"'{field}' must be an integer, got {value!r}") from None
    if not INT64_MIN <= number <= INT64_MAX:  # what the database (and MLflow's protobufs) can hold
        raise ApiError.invalid(f"'{field}' is out of the 64-bit integer range: {value!r}")
    return number


INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _possible_experiment_id(number: int) -> bool:
    """Whether an experiment can have this id: the column is 32-bit and PostgreSQL refuses a query
    parameter beyond that, so a larger id is not looked up, just not found."""
    return INT32_MIN <= number <= INT32_MAX


@dataclass(frozen=True, slots=True)
class MetricPoint:
    key: str
    value: float
    timestamp: int
    step: int
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class TrackingStore:
    """The metadata store over one async SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine, default_artifact_root: str) -> None:
        self.engine = engine
        self.default_artifact_root = default_artifact_root

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query."""
        async with self.engine.connect() as conn:
            await conn.execute(select(1))

    async def ensure_default_experiment(self) -> None:
        """MLflow's experiment 0, 'Default', created once (concurrent starts race harmlessly)."""
        async with self.engine.begin() as conn:
            found = await conn.scalar(
                select(s.experiments.c.experiment_id).where(s.experiments.c.experiment_id == DEFAULT_EXPERIMENT_ID)
            )
            if found is not None:
                return
        try:
            async with self.engine.begin() as conn:
                stamp = now_ms()
                await conn.execute(
                    insert(s.experiments).values(
                        experiment_id=DEFAULT_EXPERIMENT_ID,
                        name="Default",
                        artifact_location=self._location(DEFAULT_EXPERIMENT_ID),
                        lifecycle_stage=ACTIVE,
                        creation_time=stamp,
                        last_update_time=stamp,
                    )
                )
        except IntegrityError:
            pass

    def _location(self, experiment_id: int) -> str:
        root = self.default_artifact_root
        return f"{root}{experiment_id}" if root.endswith("/") else f"{root}/{experiment_id}"

    # -- experiments ---------------------------------------------------------------------------

    async def create_experiment(self, name: object, artifact_location: str | None, tags: list[dict[str, Any]]) -> str:
        if not isinstance(name, str) or not name.strip():
            raise ApiError.invalid("Missing value for required parameter 'name'")
        stamp = now_ms()
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    insert(s.experiments).values(
                        name=name,
                        artifact_location=artifact_location or "",
                        lifecycle_stage=ACTIVE,
                        creation_time=stamp,
                        last_update_time=stamp,
                    )
                )
                experiment_id = int(result.inserted_primary_key[0])  # type: ignore[index]
                if not artifact_location:
                    await conn.execute(
                        update(s.experiments)
                        .where(s.experiments.c.experiment_id == experiment_id)
                        .values(artifact_location=self._location(experiment_id))
                    )
                for tag in tags:
                    await conn.execute(
                        insert(s.experiment_tags).values(
                            experiment_id=experiment_id,
                            key=check_key(tag.get("key")),
                            value=check_value(tag.get("value"), MAX_TAG_VALUE, "value"),
                        )
                    )
        except IntegrityError:
            raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"Experiment(name={name}) already exists.") from None
        return str(experiment_id)

    async def _experiment_row(self, conn: AsyncConnection, experiment_id: object) -> Any:
        numeric = int_field(experiment_id, "experiment_id")
        row = (
            (await conn.execute(select(s.experiments).where(s.experiments.c.experiment_id == numeric))).first()
            if _possible_experiment_id(numeric)
            else None
        )
        if row is None:
            raise not_found(f"No Experiment with id={experiment_id} exists")
        return row

    async def _experiment_json(self, conn: AsyncConnection, row: Any) -> dict[str, Any]:
        tag_rows = (
            await conn.execute(select(s.experiment_tags).where(s.experiment_tags.c.experiment_id == row.experiment_id))
        ).all()
        body: dict[str, Any] = {
            "experiment_id": str(row.experiment_id),
            "name": row.name,
            "artifact_location": row.artifact_location,
            "lifecycle_stage": row.lifecycle_stage,
            "last_update_time": row.last_update_time,
            "creation_time": row.creation_time,
        }
        if tag_rows:
            body["tags"] = [{"key": t.key, "value": t.value} for t in tag_rows]
        return body

    async def get_experiment(self, experiment_id: object) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            return await self._experiment_json(conn, await self._experiment_row(conn, experiment_id))

    async def get_experiment_by_name(self, name: object) -> dict[str, Any]:
        if not isinstance(name, str) or not name:
            raise ApiError.invalid("Missing value for required parameter 'experiment_name'")
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(s.experiments).where(s.experiments.c.name == name))).first()
            if row is None:
                raise not_found(f"Could not find experiment with name '{name}'")
            return await self._experiment_json(conn, row)

    async def search_experiments(
        self,
        view_type: str,
        max_results: int,
        filter_string: str | None,
        page_token: str | None,
        *,
        name_contains: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of experiments; `name_contains` (case-insensitive, taken literally) is the UI's search box."""
        query = select(s.experiments)
        query = self._lifecycle(query, s.experiments.c.lifecycle_stage, view_type)
        if name_contains:
            query = query.where(func.lower(s.experiments.c.name).contains(name_contains.lower(), autoescape=True))
        if filter_string:
            if not isinstance(filter_string, str):
                raise ApiError.invalid("'filter' must be a string")
            query = query.where(_experiment_filter(filter_string))
        offset = _page(page_token)
        query = query.order_by(s.experiments.c.experiment_id).offset(offset).limit(max_results + 1)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            found = [await self._experiment_json(conn, row) for row in rows[:max_results]]
        return found, offset_token(offset + max_results) if len(rows) > max_results else None

    @staticmethod
    def _lifecycle(query: Any, column: Any, view_type: str | None) -> Any:
        view = (view_type or "ACTIVE_ONLY").upper()
        if view == "ACTIVE_ONLY":
            return query.where(column == ACTIVE)
        if view == "DELETED_ONLY":
            return query.where(column == DELETED)
        if view == "ALL":
            return query
        raise ApiError.invalid(f"Invalid view type '{view_type}': use ACTIVE_ONLY, DELETED_ONLY or ALL")

    async def update_experiment(self, experiment_id: object, new_name: object) -> None:
        if not isinstance(new_name, str) or not new_name.strip():
            raise ApiError.invalid("Missing value for required parameter 'new_name'")
        try:
            async with self.engine.begin() as conn:
                row = await self._experiment_row(conn, experiment_id)
                await conn.execute(
                    update(s.experiments)
                    .where(s.experiments.c.experiment_id == row.experiment_id)
                    .values(name=new_name, last_update_time=now_ms())
                )
        except IntegrityError:
            raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"Experiment(name={new_name}) already exists.") from None

    async def set_experiment_lifecycle(self, experiment_id: object, stage: str) -> None:
        async with self.engine.begin() as conn:
            row = await self._experiment_row(conn, experiment_id)
            if row.experiment_id == DEFAULT_EXPERIMENT_ID and stage == DELETED:
                raise ApiError.invalid("Cannot delete the default experiment '0'")
            stamp = now_ms()
            await conn.execute(
                update(s.experiments)
                .where(s.experiments.c.experiment_id == row.experiment_id)
                .values(lifecycle_stage=stage, last_update_time=stamp)
            )
            await conn.execute(
                update(s.runs)
                .where(s.runs.c.experiment_id == row.experiment_id)
                .values(lifecycle_stage=stage, deleted_time=stamp if stage == DELETED else None)
            )

    async def set_experiment_tag(self, experiment_id: object, key: object, value: object) -> None:
        async with self.engine.begin() as conn:
            row = await self._experiment_row(conn, experiment_id)
            await _upsert(
                conn,
                s.experiment_tags,
                {"experiment_id": row.experiment_id, "key": check_key(key)},
                {"value": check_value(value, MAX_TAG_VALUE, "value")},
            )

    # -- runs ----------------------------------------------------------------------------------

    async def create_run(
        self, experiment_id: object, user_id: object, start_time: object, run_name: object, tags: list[dict[str, Any]]
    ) -> dict[str, Any]:
        run_id = uuid.uuid4().hex
        tag_values = {check_key(t.get("key")): check_value(t.get("value"), MAX_TAG_VALUE, "value") for t in tags}
        name = run_name if isinstance(run_name, str) and run_name else tag_values.get(RUN_NAME_TAG) or _run_name()
        tag_values[RUN_NAME_TAG] = name
        async with self.engine.begin() as conn:
            experiment = await self._experiment_row(conn, experiment_id if experiment_id not in (None, "") else 0)
            if experiment.lifecycle_stage != ACTIVE:
                raise ApiError.invalid(f"The experiment {experiment.experiment_id} must be in the 'active' state")
            await conn.execute(
                insert(s.runs).values(
                    run_uuid=run_id,
                    experiment_id=experiment.experiment_id,
                    name=name,
                    user_id=user_id if isinstance(user_id, str) else "",
                    status="RUNNING",
                    start_time=int_field(start_time, "start_time", default=now_ms()),
                    end_time=None,
                    lifecycle_stage=ACTIVE,
                    artifact_uri=f"{experiment.artifact_location.rstrip('/')}/{run_id}/artifacts",
                )
            )
            for key, value in tag_values.items():
                await conn.execute(insert(s.tags).values(run_uuid=run_id, key=key, value=value))
            return await self._run_json(conn, await self._run_row(conn, run_id))

    async def _run_row(self, conn: AsyncConnection, run_id: object) -> Any:
        if not isinstance(run_id, str) or not run_id:
            raise _no_run(run_id)
        row = (await conn.execute(select(s.runs).where(s.runs.c.run_uuid == run_id))).first()
        if row is None:
            raise _no_run(run_id)
        return row

    async def _active_run(self, conn: AsyncConnection, run_id: object) -> Any:
        row = await self._run_row(conn, run_id)
        if row.lifecycle_stage != ACTIVE:
            raise ApiError.invalid(
                f"The run {row.run_uuid} must be in the 'active' state. Current state is {row.lifecycle_stage}."
            )
        return row

    @staticmethod
    def _run_info(row: Any) -> dict[str, Any]:
        info: dict[str, Any] = {
            "run_uuid": row.run_uuid,
            "run_id": row.run_uuid,
            "experiment_id": str(row.experiment_id),
            "run_name": row.name,
            "user_id": row.user_id,
            "status": row.status,
            "start_time": row.start_time,
            "artifact_uri": row.artifact_uri,
            "lifecycle_stage": row.lifecycle_stage,
        }
        if row.end_time is not None:
            info["end_time"] = row.end_time
        return info

    async def _run_json(self, conn: AsyncConnection, row: Any) -> dict[str, Any]:
        return (await self._runs_json(conn, [row]))[0]

    async def _runs_json(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        """Runs in MLflow's shape; one query per child table for the whole page, not per run."""
        ids = [row.run_uuid for row in rows]

        async def children(table: Any, order: Any = None) -> dict[str, list[Any]]:
            grouped: dict[str, list[Any]] = {run_id: [] for run_id in ids}
            for offset in range(0, len(ids), _IN_BATCH):  # bound the bind parameters per statement
                query = select(table).where(table.c.run_uuid.in_(ids[offset : offset + _IN_BATCH]))
                for child in (await conn.execute(query.order_by(order) if order is not None else query)).all():
                    grouped[child.run_uuid].append(child)
            return grouped

        metrics = await children(s.latest_metrics, s.latest_metrics.c.key)
        params = await children(s.params, s.params.c.key)
        tags = await children(s.tags, s.tags.c.key)
        inputs = await children(s.run_inputs)
        outputs = await children(s.run_outputs)
        runs = []
        for row in rows:
            run_id = row.run_uuid
            data: dict[str, Any] = {}
            if metrics[run_id]:
                data["metrics"] = [
                    {
                        "key": m.key,
                        "value": _number(math.nan if m.is_nan else m.value),
                        "timestamp": m.timestamp,
                        "step": m.step,
                    }
                    for m in metrics[run_id]
                ]
            if params[run_id]:
                data["params"] = [{"key": p.key, "value": p.value} for p in params[run_id]]
            if tags[run_id]:
                data["tags"] = [{"key": t.key, "value": t.value} for t in tags[run_id]]
            run_inputs = {"dataset_inputs": [_dataset_input(i) for i in inputs[run_id]]} if inputs[run_id] else {}
            run_outputs = (
                {"model_outputs": [{"model_id": o.model_id, "step": o.step} for o in outputs[run_id]]}
                if outputs[run_id]
                else {}
            )
            runs.append({"info": self._run_info(row), "data": data, "inputs": run_inputs, "outputs": run_outputs})
        return runs

    async def get_run(self, run_id: object) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            return await self._run_json(conn, await self._run_row(conn, run_id))

    async def update_run(self, run_id: object, status: object, end_time: object, run_name: object) -> dict[str, Any]:
        async with self.engine.begin() as conn:
            row = await self._active_run(conn, run_id)
            values: dict[str, Any] = {}
            if status not in (None, ""):
                if status not in RUN_STATUSES:
                    raise ApiError.invalid(f"Invalid value {status!r} for parameter 'status'")
                values["status"] = status
            if end_time not in (None, ""):
                values["end_time"] = int_field(end_time, "end_time")
            if isinstance(run_name, str) and run_name:
                values["name"] = run_name
                await _upsert(conn, s.tags, {"run_uuid": row.run_uuid, "key": RUN_NAME_TAG}, {"value": run_name})
            if values:
                await conn.execute(update(s.runs).where(s.runs.c.run_uuid == row.run_uuid).values(**values))
            return self._run_info(await self._run_row(conn, row.run_uuid))

    async def set_run_lifecycle(self, run_id: object, stage: str) -> None:
        async with self.engine.begin() as conn:
            row = await self._run_row(conn, run_id)
            await conn.execute(
                update(s.runs)
                .where(s.runs.c.run_uuid == row.run_uuid)
                .values(lifecycle_stage=stage, deleted_time=now_ms() if stage == DELETED else None)
            )

    async def log_batch(
        self,
        run_id: object,
        metrics: Sequence[MetricPoint],
        params: Sequence[dict[str, Any]],
        tags: Sequence[dict[str, Any]],
    ) -> None:
        if (
            len(metrics) > MAX_BATCH_METRICS
            or len(params) > MAX_BATCH_PARAMS
            or len(tags) > MAX_BATCH_TAGS
            or (len(metrics) + len(params) + len(tags) > MAX_BATCH_TOTAL)
        ):
            raise ApiError.invalid(
                f"A batch logging request can contain at most {MAX_BATCH_METRICS} metrics, {MAX_BATCH_PARAMS} "
                f"params, {MAX_BATCH_TAGS} tags and {MAX_BATCH_TOTAL} entities in total"
            )
        checked_params = [
            (check_key(p.get("key")), check_value(p.get("value"), MAX_PARAM_VALUE, "value")) for p in params
        ]
        checked_tags = [(check_key(t.get("key")), check_value(t.get("value"), MAX_TAG_VALUE, "value")) for t in tags]
        async with self.engine.begin() as conn:
            row = await self._active_run(conn, run_id)
            for key, value in checked_params:
                # Insert unless the key is there (a concurrent writer's insert is waited for, not
                # collided with), then compare with what is there: logging the same value again is fine.
                inserted = await conn.execute(
                    _insert(conn, s.params)
                    .values(run_uuid=row.run_uuid, key=key, value=value)
                    .on_conflict_do_nothing(index_elements=["run_uuid", "key"])
                )
                if inserted.rowcount == 1:
                    continue
                existing = await conn.scalar(
                    select(s.params.c.value).where(s.params.c.run_uuid == row.run_uuid, s.params.c.key == key)
                )
                if existing != value:
                    raise ApiError.invalid(
                        f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                        f"value='{existing}' for run ID='{row.run_uuid}'. Attempted logging new value '{value}'."
                    )
            for key, value in checked_tags:
                await _upsert(conn, s.tags, {"run_uuid": row.run_uuid, "key": key}, {"value": value})
                if key == RUN_NAME_TAG:
                    await conn.execute(update(s.runs).where(s.runs.c.run_uuid == row.run_uuid).values(name=value))
            if metrics:
                await self._insert_metrics(conn, row.run_uuid, metrics)

    async def _insert_metrics(self, conn: AsyncConnection, run_id: str, points: Sequence[MetricPoint]) -> None:
        await conn.execute(
            insert(s.metrics),
            [
                {
                    "run_uuid": run_id,
                    "key": p.key,
                    "value": 0.0 if math.isnan(p.value) else p.value,
                    "is_nan": math.isnan(p.value),
                    "timestamp": p.timestamp,
                    "step": p.step,
                    "model_id": p.model_id,
                    "dataset_name": p.dataset_name,
                    "dataset_digest": p.dataset_digest,
                }
                for p in points
            ],
        )
        latest: dict[str, MetricPoint] = {}
        for point in points:  # MLflow's "latest": the highest step, then timestamp, then value
            current = latest.get(point.key)
            if current is None or (point.step, point.timestamp, point.value) >= (
                current.step,
                current.timestamp,
                current.value,
            ):
                latest[point.key] = point
        for key, point in latest.items():
            # One statement, so two writers of the same run and key (two replicas, two workers)
            # neither collide on the first insert nor overwrite a later point with an earlier one.
            await _upsert(
                conn,
                s.latest_metrics,
                {"run_uuid": run_id, "key": key},
                {
                    "value": 0.0 if math.isnan(point.value) else point.value,
                    "is_nan": math.isnan(point.value),
                    "timestamp": point.timestamp,
                    "step": point.step,
                },
                only_if=lambda new: (
                    tuple_(new.step, new.timestamp, new.value)
                    >= tuple_(s.latest_metrics.c.step, s.latest_metrics.c.timestamp, s.latest_metrics.c.value)
                ),
            )

    async def delete_tag(self, run_id: object, key: object) -> None:
        async with self.engine.begin() as conn:
            row = await self._active_run(conn, run_id)
            result = await conn.execute(
                delete(s.tags).where(s.tags.c.run_uuid == row.run_uuid, s.tags.c.key == check_key(key))
            )
            if result.rowcount == 0:
                raise not_found(f"No tag with name: {key} in run with id {row.run_uuid}")

    async def log_inputs(self, run_id: object, datasets: list[dict[str, Any]]) -> None:
        async with self.engine.begin() as conn:
            row = await self._active_run(conn, run_id)
            for item in datasets:
                dataset = item.get("dataset") or {}
                if not isinstance(dataset, dict):
                    raise ApiError.invalid("Each dataset input's 'dataset' must be a JSON object")
                name, digest = dataset.get("name"), dataset.get("digest")
                if not isinstance(name, str) or not isinstance(digest, str) or not name or not digest:
                    raise ApiError.invalid("Each dataset input needs a 'dataset' with 'name' and 'digest'")
                for field in ("source_type", "source", "schema", "profile"):
                    if dataset.get(field) is not None and not isinstance(dataset[field], str):
                        raise ApiError.invalid(f"The dataset's '{field}' must be a string")
                await _upsert(
                    conn,
                    s.run_inputs,
                    {"run_uuid": row.run_uuid, "name": name, "digest": digest},
                    {
                        "source_type": dataset.get("source_type") or "",
                        "source": dataset.get("source") or "",
                        "schema": dataset.get("schema"),
                        "profile": dataset.get("profile"),
                        "tags": json.dumps(item.get("tags") or []),
                    },
                )

    async def log_outputs(self, run_id: object, models: list[dict[str, Any]]) -> None:
        async with self.engine.begin() as conn:
            row = await self._active_run(conn, run_id)
            for model in models:
                model_id = model.get("model_id")
                if not isinstance(model_id, str) or not model_id:
                    raise ApiError.invalid("Each model output needs a 'model_id'")
                await self._model_row(conn, model_id)
                await _upsert(
                    conn,
                    s.run_outputs,
                    {"run_uuid": row.run_uuid, "model_id": model_id},
                    {"step": int_field(model.get("step"), "step", default=0)},
                )

    async def metric_history(
        self, run_id: object, key: object, max_results: int, page_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        offset = _page(page_token)
        async with self.engine.connect() as conn:
            row = await self._run_row(conn, run_id)
            rows = (
                await conn.execute(
                    select(s.metrics)
                    .where(s.metrics.c.run_uuid == row.run_uuid, s.metrics.c.key == check_key(key, "metric_key"))
                    .order_by(s.metrics.c.step, s.metrics.c.timestamp, s.metrics.c.id)
                    .offset(offset)
                    .limit(max_results + 1)
                )
            ).all()
        points = [
            {
                "key": m.key,
                "value": _number(math.nan if m.is_nan else m.value),
                "timestamp": m.timestamp,
                "step": m.step,
            }
            for m in rows[:max_results]
        ]
        return points, offset_token(offset + max_results) if len(rows) > max_results else None

    async def metric_history_bulk(self, run_ids: list[str], key: object, max_results: int) -> list[dict[str, Any]]:
        """One metric's points for several runs, from one query over `metrics`, each with its `run_id`.

        Runs in id order (a repeated id repeats its points), each run's points by (timestamp, step, value),
        NaN ranked as its stored 0 as in MLflow's SQL store; at most `max_results` points in all. An
        unknown run is an error, as in `metric_history`, unless the points before it fill `max_results`.
        """
        ordered = sorted(run_ids)
        async with self.engine.connect() as conn:
            known = sorted(await conn.scalars(select(s.runs.c.run_uuid).where(s.runs.c.run_uuid.in_(ordered))))
            if ordered[0] not in known:  # the first run is checked before the key, as in `metric_history`
                raise _no_run(ordered[0])
            m = s.metrics.c
            # Python's id order, whatever the database's collation
            run_order = case({run_id: n for n, run_id in enumerate(known)}, value=m.run_uuid)
            query = (
                select(m.run_uuid, m.key, m.value, m.is_nan, m.timestamp, m.step)
                .where(m.run_uuid.in_(known), m.key == check_key(key, "metric_key"))
                .order_by(run_order, m.timestamp, m.step, m.value, m.is_nan, m.id)
                .limit(max_results)  # a repeated run needs no more rows: its points come twice
            )
            rows = (await conn.execute(query)).all()
        by_run: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in known}
        for row in rows:
            by_run[row.run_uuid].append(
                {
                    "key": row.key,
                    "value": _number(math.nan if row.is_nan else row.value),
                    "timestamp": row.timestamp,
                    "step": row.step,
                    "run_id": row.run_uuid,
                }
            )
        found: list[dict[str, Any]] = []
        for run_id in ordered:
            if len(found) >= max_results:
                break
            if run_id not in by_run:
                raise _no_run(run_id)
            found.extend(by_run[run_id])
        return found[:max_results]

    async def search_runs(
        self,
        experiment_ids: list[object],
        filter_string: str | None,
        view_type: str | None,
        max_results: int,
        order_by: list[str] | None,
        page_token: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        if not 1 <= max_results <= MAX_SEARCH_RESULTS:
            raise ApiError.invalid(f"Invalid value for max_results: it must be from 1 to {MAX_SEARCH_RESULTS}")
        try:
            ordering = parse_order_by(order_by)
        except InvalidFilter as exc:
            raise ApiError.invalid(str(exc)) from None
        query = _order_runs(self._runs_query(experiment_ids, filter_string, view_type), ordering)
        offset = _page(page_token)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.offset(offset).limit(max_results + 1))).all()
            found = await self._runs_json(conn, rows[:max_results])
        return found, offset_token(offset + max_results) if len(rows) > max_results else None

    async def count_runs(self, experiment_ids: list[object], filter_string: str | None, view_type: str | None) -> int:
        """How many runs `search_runs` would page through with these arguments."""
        query = self._runs_query(experiment_ids, filter_string, view_type).with_only_columns(func.count())
        async with self.engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    def _runs_query(self, experiment_ids: list[object], filter_string: str | None, view_type: str | None) -> Any:
        try:
            comparisons = parse_filter(filter_string)
        except InvalidFilter as exc:
            raise ApiError.invalid(str(exc)) from None
        ids = [int_field(value, "experiment_ids") for value in experiment_ids]
        query = select(s.runs).where(s.runs.c.experiment_id.in_(list(filter(_possible_experiment_id, ids))))
        query = self._lifecycle(query, s.runs.c.lifecycle_stage, view_type)
        for comparison in comparisons:
            query = query.where(_run_condition(comparison))
        return query

    async def experiment_keys(self, experiment_id: int, newest_runs: int) -> dict[str, list[str]]:
        """The param, metric and tag keys of the experiment's `newest_runs` runs, sorted: the UI's columns.

        The caller has already found the experiment (an unknown id just has no keys). Bounded by run
        count so that an experiment of any size answers in the same time.
        """
        async with self.engine.connect() as conn:
            runs_of = (
                select(s.runs.c.run_uuid)
                .where(s.runs.c.experiment_id == experiment_id)
                .order_by(s.runs.c.start_time.desc(), s.runs.c.run_uuid)
                .limit(newest_runs)
            )
            found: dict[str, list[str]] = {}
            for kind, table in (("params", s.params), ("metrics", s.latest_metrics), ("tags", s.tags)):
                query = select(table.c.key).where(table.c.run_uuid.in_(runs_of)).distinct().order_by(table.c.key)
                found[kind] = list((await conn.scalars(query)).all())
        return found

    # -- logged models (MLflow 3) --------------------------------------------------------------

    async def create_logged_model(self, body: dict[str, Any]) -> dict[str, Any]:
        model_id = f"m-{uuid.uuid4().hex}"
        name = body.get("name") or "model"
        if not isinstance(name, str):
            raise ApiError.invalid("'name' must be a string")
        stamp = now_ms()
        async with self.engine.begin() as conn:
            experiment = await self._experiment_row(conn, body.get("experiment_id"))
            source_run_id = body.get("source_run_id") or None
            if source_run_id is not None:
                await self._run_row(conn, source_run_id)
            await conn.execute(
                insert(s.logged_models).values(
                    model_id=model_id,
                    experiment_id=experiment.experiment_id,
                    name=name,
                    artifact_location=f"{experiment.artifact_location.rstrip('/')}/models/{model_id}/artifacts",
                    creation_timestamp=stamp,
                    last_updated_timestamp=stamp,
                    status="LOGGED_MODEL_PENDING",
                    lifecycle_stage=ACTIVE,
                    model_type=body.get("model_type"),
                    source_run_id=source_run_id,
                )
            )
            tags = {
                check_key(tag.get("key")): check_value(tag.get("value"), MAX_TAG_VALUE, "value")
                for tag in body.get("tags") or []
            }  # a key given twice: the last value wins, as when tags are set one by one
            params: dict[str, str] = {}
            for param in body.get("params") or []:
                key, value = check_key(param.get("key")), check_value(param.get("value"), MAX_PARAM_VALUE, "value")
                if params.setdefault(key, value) != value:
                    raise ApiError.invalid(f"Param '{key}' is given twice with different values")
            for key, value in tags.items():
                await conn.execute(insert(s.logged_model_tags).values(model_id=model_id, key=key, value=value))
            for key, value in params.items():
                await conn.execute(insert(s.logged_model_params).values(model_id=model_id, key=key, value=value))
            return await self._model_json(conn, await self._model_row(conn, model_id))

    async def _model_row(self, conn: AsyncConnection, model_id: object) -> Any:
        row = (await conn.execute(select(s.logged_models).where(s.logged_models.c.model_id == model_id))).first()
        if row is None or row.lifecycle_stage != ACTIVE:
            raise not_found(f"Logged model with ID '{model_id}' not found.")
        return row

    async def _model_json(self, conn: AsyncConnection, row: Any) -> dict[str, Any]:
        tag_rows = (
            await conn.execute(select(s.logged_model_tags).where(s.logged_model_tags.c.model_id == row.model_id))
        ).all()
        param_rows = (
            await conn.execute(select(s.logged_model_params).where(s.logged_model_params.c.model_id == row.model_id))
        ).all()
        info: dict[str, Any] = {
            "model_id": row.model_id,
            "experiment_id": str(row.experiment_id),
            "name": row.name,
            "artifact_uri": row.artifact_location,
            "creation_timestamp_ms": row.creation_timestamp,
            "last_updated_timestamp_ms": row.last_updated_timestamp,
            "status": row.status,
            "lifecycle_stage": row.lifecycle_stage,
        }
        for field, value in (
            ("model_type", row.model_type),
            ("source_run_id", row.source_run_id),
            ("status_message", row.status_message),
        ):
            if value:
                info[field] = value
        if tag_rows:
            info["tags"] = [{"key": t.key, "value": t.value} for t in tag_rows]
        data: dict[str, Any] = {}
        if param_rows:
            data["params"] = [{"key": p.key, "value": p.value} for p in param_rows]
        return {"info": info, "data": data}

    async def get_logged_model(self, model_id: object) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            return await self._model_json(conn, await self._model_row(conn, model_id))

    async def finalize_logged_model(self, model_id: object, status: object) -> dict[str, Any]:
        if status not in MODEL_STATUSES:
            raise ApiError.invalid(f"Invalid value {status!r} for parameter 'status'")
        async with self.engine.begin() as conn:
            row = await self._model_row(conn, model_id)
            await conn.execute(
                update(s.logged_models)
                .where(s.logged_models.c.model_id == row.model_id)
                .values(status=status, last_updated_timestamp=now_ms())
            )
            return await self._model_json(conn, await self._model_row(conn, row.model_id))

    async def delete_logged_model(self, model_id: object) -> None:
        async with self.engine.begin() as conn:
            row = await self._model_row(conn, model_id)
            await conn.execute(
                update(s.logged_models)
                .where(s.logged_models.c.model_id == row.model_id)
                .values(lifecycle_stage=DELETED, last_updated_timestamp=now_ms())
            )

    async def set_logged_model_tags(self, model_id: object, tags: list[dict[str, Any]]) -> None:
        async with self.engine.begin() as conn:
            row = await self._model_row(conn, model_id)
            for tag in tags:
                await _upsert(
                    conn,
                    s.logged_model_tags,
                    {"model_id": row.model_id, "key": check_key(tag.get("key"))},
                    {"value": check_value(tag.get("value"), MAX_TAG_VALUE, "value")},
                )

    async def delete_logged_model_tag(self, model_id: object, key: object) -> None:
        async with self.engine.begin() as conn:
            row = await self._model_row(conn, model_id)
            await conn.execute(
                delete(s.logged_model_tags).where(
                    s.logged_model_tags.c.model_id == row.model_id, s.logged_model_tags.c.key == check_key(key)
                )
            )

    async def search_logged_models(
        self, experiment_ids: list[object], filter_string: str | None, max_results: int, page_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        ids = [int_field(value, "experiment_ids") for value in experiment_ids]
        query = select(s.logged_models).where(s.logged_models.c.lifecycle_stage == ACTIVE)
        if ids:
            query = query.where(s.logged_models.c.experiment_id.in_(list(filter(_possible_experiment_id, ids))))
        for clause in _model_filter(filter_string):
            query = query.where(clause)
        offset = _page(page_token)
        query = query.order_by(s.logged_models.c.creation_timestamp.desc(), s.logged_models.c.model_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.offset(offset).limit(max_results + 1))).all()
            found = [await self._model_json(conn, row) for row in rows[:max_results]]
        return found, offset_token(offset + max_results) if len(rows) > max_results else None


# -- helpers -----------------------------------------------------------------------------------


def _insert(conn: AsyncConnection, table: Any) -> Any:
    """An INSERT with the dialect's ON CONFLICT clauses (SQLite and PostgreSQL spell them alike)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


async def _upsert(
    conn: AsyncConnection,
    table: Any,
    keys: dict[str, Any],
    values: dict[str, Any],
    *,
    only_if: Callable[[Any], ColumnElement[bool]] | None = None,
) -> None:
    """Insert or update the row whose primary key is `keys`, in one statement.

    Atomic, so concurrent writers of one row (replicas sharing PostgreSQL) neither fail on the key
    nor lose an update. `only_if(new)` limits the update to when the condition on the proposed
    row (`new`) and the stored one (`table.c`) holds.
    """
    statement = _insert(conn, table).values(**keys, **values)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: statement.excluded[name] for name in values},
            where=None if only_if is None else only_if(statement.excluded),
        )
    )


def _dataset_input(row: Any) -> dict[str, Any]:
    dataset: dict[str, Any] = {
        "name": row.name,
        "digest": row.digest,
        "source_type": row.source_type,
        "source": row.source,
    }
    if row.schema:
        dataset["schema"] = row.schema
    if row.profile:
        dataset["profile"] = row.profile
    item: dict[str, Any] = {"dataset": dataset}
    tags = json.loads(row.tags)
    if tags:
        item["tags"] = tags
    return item


_ATTRIBUTE_COLUMNS = {
    "run_id": s.runs.c.run_uuid,
    "run_name": s.runs.c.name,
    "status": s.runs.c.status,
    "user_id": s.runs.c.user_id,
    "start_time": s.runs.c.start_time,
    "end_time": s.runs.c.end_time,
    "artifact_uri": s.runs.c.artifact_uri,
    "lifecycle_stage": s.runs.c.lifecycle_stage,
}


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "=":
        return column == value  # type: ignore[no-any-return]
    if op == "!=":
        return column != value  # type: ignore[no-any-return]
    if op == ">":
        return column > value  # type: ignore[no-any-return]
    if op == ">=":
        return column >= value  # type: ignore[no-any-return]
    if op == "<":
        return column < value  # type: ignore[no-any-return]
    if op == "<=":
        return column <= value  # type: ignore[no-any-return]
    if op == "LIKE":
        return column.like(value)  # type: ignore[no-any-return]
    if op == "ILIKE":
        return func.lower(column).like(func.lower(value))
    if op == "IN":
        return column.in_(list(value))  # type: ignore[no-any-return]
    if op == "NOT IN":
        return column.not_in(list(value))  # type: ignore[no-any-return]
    if op == "IS NULL":
        return column.is_(None)  # type: ignore[no-any-return]
    if op == "IS NOT NULL":
        return column.is_not(None)  # type: ignore[no-any-return]
    raise ApiError.invalid(f"Invalid comparator '{op}'")


def _run_condition(comparison: Comparison) -> ColumnElement[bool]:
    entity, key, op, value = comparison.entity, comparison.key, comparison.op, comparison.value
    run = s.runs.c.run_uuid
    if entity == "attribute":
        if key not in _ATTRIBUTE_COLUMNS:
            raise ApiError.invalid(f"Invalid attribute key '{key}'")
        return _compare(_ATTRIBUTE_COLUMNS[key], op, value)
    if entity == "metric":
        table = s.latest_metrics
        matched = exists().where(
            table.c.run_uuid == run, table.c.key == key, not_(table.c.is_nan), _compare(table.c.value, op, value)
        )
        return matched
    if entity in ("param", "tag"):
        table = s.params if entity == "param" else s.tags
        if op == "IS NULL":
            return not_(exists().where(table.c.run_uuid == run, table.c.key == key))
        if op == "IS NOT NULL":
            return exists().where(table.c.run_uuid == run, table.c.key == key)
        return exists().where(table.c.run_uuid == run, table.c.key == key, _compare(table.c.value, op, value))
    if entity == "dataset":
        column = {"name": s.run_inputs.c.name, "digest": s.run_inputs.c.digest}.get(key)
        if column is None:
            context = s.run_inputs.c.tags.like(f'%"mlflow.data.context"%"{value}"%')
            return exists().where(s.run_inputs.c.run_uuid == run, context)
        return exists().where(s.run_inputs.c.run_uuid == run, _compare(column, op, value))
    raise ApiError.invalid(f"Invalid entity '{entity}' in filter")


def _order_runs(query: Any, ordering: list[OrderBy]) -> Any:
    clauses: list[Any] = []
    for index, order in enumerate(ordering):
        if order.entity == "attribute":
            column = _ATTRIBUTE_COLUMNS.get(order.key)
            if column is None:
                raise ApiError.invalid(f"Invalid order_by attribute '{order.key}'")
        else:
            table = {"metric": s.latest_metrics, "param": s.params, "tag": s.tags}.get(order.entity)
            if table is None:
                raise ApiError.invalid(f"Cannot order by '{order.entity}'")
            alias = table.alias(f"order_{index}")
            query = query.outerjoin(alias, and_(alias.c.run_uuid == s.runs.c.run_uuid, alias.c.key == order.key))
            column = alias.c.value
        if order.entity != "attribute" or column.nullable:  # outer-joined values may be missing too
            clauses.append(column.is_(None))  # MLflow puts runs without the value last, whichever the direction
        clauses.append(column.asc() if order.ascending else column.desc())
    if not (ordering and ordering[0].entity == "attribute" and ordering[0].key == "start_time"):
        clauses.append(s.runs.c.start_time.desc())
    clauses.append(s.runs.c.run_uuid)  # the tiebreak: ix_runs_experiment_start serves the default order
    return query.order_by(*clauses)


def _experiment_filter(filter_string: str) -> ColumnElement[bool]:
    """MLflow's experiment filter subset used by clients: name and tags comparisons."""
    conditions = []
    for clause in re.split(r"\s+and\s+", filter_string, flags=re.IGNORECASE):
        text = clause.strip()
        for op in (" ILIKE ", " LIKE ", " != ", " = "):
            left, sep, right = text.partition(op)
            if sep:
                value = right.strip().strip("'\"")
                field = left.strip().strip("`")
                if field in ("name", "attribute.name", "attributes.name"):
                    conditions.append(_compare(s.experiments.c.name, op.strip(), value))
                elif field.startswith("tags."):
                    key = field[len("tags.") :].strip("`")
                    table = s.experiment_tags
                    conditions.append(
                        exists().where(
                            table.c.experiment_id == s.experiments.c.experiment_id,
                            table.c.key == key,
                            _compare(table.c.value, op.strip(), value),
                        )
                    )
                else:
                    raise ApiError.invalid(f"Invalid attribute key '{field}' in experiment filter")
                break
        else:
            raise ApiError.invalid(f"Invalid clause '{text}' in experiment filter")
    return and_(*conditions)


def _model_filter(filter_string: str | None) -> list[ColumnElement[bool]]:
    """The logged-model filters MLflow's client sends: `name = '...'` (and source_run_id)."""
    if not filter_string:
        return []
    conditions: list[ColumnElement[bool]] = []
    for clause in [part.strip() for part in re.split(r"\s+and\s+", filter_string, flags=re.IGNORECASE)]:
        left, sep, right = clause.partition("=")
        field, value = left.strip().rstrip("!").strip("`"), right.strip().strip("'\"")
        if not sep or field not in ("name", "source_run_id", "model_id", "status"):
            raise ApiError.invalid(f"Unsupported logged model filter clause '{clause}'")
        column = s.logged_models.c[field]
        conditions.append(column != value if left.strip().endswith("!") else column == value)
    return conditions
