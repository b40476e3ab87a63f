"""MLflow 3 logged models: create, read, finalize, delete, tags, search, and runs' model outputs."""

from __future__ import annotations

import math
import re
import uuid
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from gateway.store import schema as s
from gateway.store.errors import InvalidValue
from gateway.tracking.limits import MAX_PARAM_VALUE, MAX_TAG_VALUE, MODEL_STATUSES
from gateway.tracking.store.base import StoreBase
from gateway.tracking.store.sql import upsert
from gateway.tracking.store.values import (
    ACTIVE,
    DELETED,
    check_key,
    check_value,
    int_field,
    json_number,
    now_ms,
    offset_token,
    page_offset,
    possible_experiment_id,
)


class LoggedModelStore(StoreBase):
    """MLflow 3 logged models, and the runs that output them."""

    async def create_logged_model(self, body: dict[str, Any]) -> dict[str, Any]:
        model_id = f"m-{uuid.uuid4().hex}"
        name = body.get("name") or "model"
        if not isinstance(name, str):
            raise InvalidValue("'name' must be a string")
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
                    raise InvalidValue(f"Param '{key}' is given twice with different values")
            for key, value in tags.items():
                await conn.execute(insert(s.logged_model_tags).values(model_id=model_id, key=key, value=value))
            for key, value in params.items():
                await conn.execute(insert(s.logged_model_params).values(model_id=model_id, key=key, value=value))
            return await self._model_json(conn, await self._model_row(conn, model_id))

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
        metric_rows = (
            await conn.execute(
                select(s.logged_model_metrics)
                .where(s.logged_model_metrics.c.model_id == row.model_id)
                .order_by(
                    s.logged_model_metrics.c.key, s.logged_model_metrics.c.step, s.logged_model_metrics.c.timestamp
                )
            )
        ).all()
        data: dict[str, Any] = {}
        if param_rows:
            data["params"] = [{"key": p.key, "value": p.value} for p in param_rows]
        if metric_rows:
            data["metrics"] = [_linked_metric(m) for m in metric_rows]
        return {"info": info, "data": data}

    async def get_logged_model(self, model_id: object) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            return await self._model_json(conn, await self._model_row(conn, model_id))

    async def finalize_logged_model(self, model_id: object, status: object) -> dict[str, Any]:
        if status not in MODEL_STATUSES:
            raise InvalidValue(f"Invalid value {status!r} for parameter 'status'")
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
                await upsert(
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
            query = query.where(s.logged_models.c.experiment_id.in_(list(filter(possible_experiment_id, ids))))
        for clause in model_filter(filter_string):
            query = query.where(clause)
        offset = page_offset(page_token)
        query = query.order_by(s.logged_models.c.creation_timestamp.desc(), s.logged_models.c.model_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.offset(offset).limit(max_results + 1))).all()
            found = [await self._model_json(conn, row) for row in rows[:max_results]]
        return found, offset_token(offset + max_results) if len(rows) > max_results else None

    async def log_outputs(self, run_id: object, models: list[dict[str, Any]]) -> None:
        async with self.engine.begin() as conn:
            row = await self._active_run(conn, run_id)
            for model in models:
                model_id = model.get("model_id")
                if not isinstance(model_id, str) or not model_id:
                    raise InvalidValue("Each model output needs a 'model_id'")
                await self._model_row(conn, model_id)
                await upsert(
                    conn,
                    s.run_outputs,
                    {"run_uuid": row.run_uuid, "model_id": model_id},
                    {"step": int_field(model.get("step"), "step", default=0)},
                )


def model_filter(filter_string: str | None) -> list[ColumnElement[bool]]:
    """The logged-model filters MLflow's client sends: `name = '...'` (and source_run_id)."""
    if not filter_string:
        return []
    conditions: list[ColumnElement[bool]] = []
    for clause in [part.strip() for part in re.split(r"\s+and\s+", filter_string, flags=re.IGNORECASE)]:
        left, sep, right = clause.partition("=")
        field, value = left.strip().rstrip("!").strip("`"), right.strip().strip("'\"")
        if not sep or field not in ("name", "source_run_id", "model_id", "status"):
            raise InvalidValue(f"Unsupported logged model filter clause '{clause}'")
        column = s.logged_models.c[field]
        conditions.append(column != value if left.strip().endswith("!") else column == value)
    return conditions


def _linked_metric(row: Any) -> dict[str, Any]:
    """A metric point linked to a logged model, as MLflow's `Metric` proto carries it."""
    metric: dict[str, Any] = {
        "key": row.key,
        "value": json_number(math.nan if row.is_nan else row.value),
        "timestamp": row.timestamp,
        "step": row.step,
        "model_id": row.model_id,
        "run_id": row.run_uuid,
    }
    if row.dataset_name:
        metric["dataset_name"] = row.dataset_name
    if row.dataset_digest:
        metric["dataset_digest"] = row.dataset_digest
    return metric
