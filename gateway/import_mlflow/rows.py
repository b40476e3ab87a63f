"""What a source hands the writer: rows already in the gateway's columns, grouped by table name.

A source never writes; the writer inserts these rows in foreign-key order. Rows of the registry name
their model (`name`) where the gateway keys by a surrogate id: the writer resolves it.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

Row = dict[str, Any]
Rows = dict[str, list[Row]]

RUN_STATUSES = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
LOGGED_MODEL_STATUSES = {
    0: "LOGGED_MODEL_STATUS_UNSPECIFIED",
    1: "LOGGED_MODEL_PENDING",
    2: "LOGGED_MODEL_READY",
    3: "LOGGED_MODEL_UPLOAD_FAILED",
}
SPANS_LOCATION = "mlflow.trace.spansLocation"
TRACKING_STORE = "TRACKING_STORE"


class SourceError(Exception):
    """The source cannot be read (missing, not an MLflow store); the message is one line for the operator."""


@dataclass
class Inventory:
    """How many of each entity a store holds (the verification compares two of these)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, entity: str, number: int = 1) -> None:
        self.counts[entity] = self.counts.get(entity, 0) + number


ENTITIES = (
    "experiments",
    "experiment tags",
    "runs",
    "params",
    "run tags",
    "metric points",
    "dataset inputs",
    "logged models",
    "registered models",
    "model versions",
    "aliases",
    "traces",
    "spans",
    "assessments",
)


class Source(Protocol):
    """An MLflow store read in the gateway's shape."""

    description: str

    async def close(self) -> None: ...

    async def experiments(self) -> Rows:
        """`experiments` and `experiment_tags`."""
        ...

    async def logged_models(self, experiment_ids: list[int]) -> Rows:
        """`logged_models`, `logged_model_tags`, `logged_model_params` of these experiments."""
        ...

    async def run_ids(self, experiment_ids: list[int]) -> list[str]: ...

    async def runs(self, run_ids: list[str]) -> Rows:
        """`runs` and everything of theirs but metric points: `params`, `tags`, `latest_metrics`,
        `run_inputs`, `run_outputs`, `run_model_inputs`, `logged_model_metrics`."""
        ...

    def metric_points(self, run_ids: list[str], batch: int) -> AsyncIterator[list[Point]]:
        """The runs' `metrics` rows, `batch` at a time."""
        ...

    async def registered_models(self) -> list[Rows]:
        """Per model: `registered_models`, `registered_model_tags`, `model_versions`, `model_version_tags`,
        `registered_model_aliases` (each row naming the model by `name`)."""
        ...

    async def trace_ids(self, experiment_ids: list[int]) -> list[str]: ...

    async def traces(self, trace_ids: list[str]) -> Rows:
        """`trace_info`, `trace_tags`, `trace_request_metadata`, `spans`, `assessments`."""
        ...

    async def inventory(self) -> Inventory: ...


def metric_row(run_uuid: str, key: str, value: float | None, timestamp: int, step: int, is_nan: bool = False) -> Row:
    nan = is_nan or value is None or math.isnan(value)
    return {
        "run_uuid": run_uuid,
        "key": key,
        "value": 0.0 if nan else float(value),  # type: ignore[arg-type]
        "is_nan": nan,
        "timestamp": int(timestamp),
        "step": int(step),
    }


Point = tuple[str, str, float, bool, int, int]
"""A metric point as written in bulk: run_uuid, key, value (0.0 when NaN), is_nan, timestamp, step."""


def point(
    run_uuid: str, key: str, value: float | None, timestamp: int | None, step: int | None, is_nan: bool = False
) -> Point:
    nan = bool(is_nan) or value is None or value != value  # NaN is the one value unequal to itself
    return (run_uuid, key, 0.0 if nan else float(value), nan, int(timestamp or 0), int(step or 0))  # type: ignore[arg-type]


def latest_of(points: list[Point]) -> list[Row]:
    """Each key's latest point as MLflow picks it: the highest step, then timestamp, then value."""
    latest: dict[tuple[str, str], Point] = {}
    for candidate in points:
        key = (candidate[0], candidate[1])
        old = latest.get(key)
        if old is None or (candidate[5], candidate[4], candidate[2]) > (old[5], old[4], old[2]):
            latest[key] = candidate
    return [
        {"run_uuid": p[0], "key": p[1], "value": p[2], "is_nan": p[3], "timestamp": p[4], "step": p[5]}
        for p in latest.values()
    ]


def ms_timestamp(ms: int) -> str:
    """Protobuf JSON's Timestamp (RFC 3339, UTC) for milliseconds since the epoch."""
    import datetime

    moment = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def assessment_content(row: Row) -> str:
    """MLflow's Assessment in protobuf JSON (what the gateway keeps) from the columns of its SQL table."""
    content: dict[str, Any] = {
        "assessment_id": row["assessment_id"],
        "assessment_name": row["name"],
        "trace_id": row["trace_id"],
        "source": {
            "source_type": row["source_type"],
            **({"source_id": row["source_id"]} if row.get("source_id") else {}),
        },
        "create_time": ms_timestamp(int(row["created_timestamp"])),
        "last_update_time": ms_timestamp(int(row["last_updated_timestamp"])),
    }
    value = json.loads(row["value"]) if row.get("value") is not None else None
    kind = row.get("assessment_type") or "feedback"
    if kind == "expectation":
        content["expectation"] = {"value": value}
    elif kind == "issue":
        content["issue"] = value
    else:
        feedback: dict[str, Any] = {"value": value}
        if row.get("error"):
            feedback["error"] = json.loads(row["error"])
        content["feedback"] = feedback
    for name in ("rationale", "span_id", "overrides", "run_id"):
        if row.get(name):
            content[name] = row[name]
    if row.get("assessment_metadata"):
        content["metadata"] = json.loads(row["assessment_metadata"])
    if row.get("valid") is not None:
        content["valid"] = bool(row["valid"])
    return json.dumps(content, separators=(",", ":"))


def model_version_record(
    values: dict[str, Any], name: str, number: int, created: int, updated: int, model_id: str | None
) -> Row:
    """A registered model version as the writer takes it, from either source's fields (`values`)."""
    return {
        "name": name,
        "version": number,
        "creation_time": created,
        "last_updated_time": updated,
        "description": values.get("description"),
        "user_id": values.get("user_id"),
        "current_stage": values.get("current_stage") or "None",
        "source": values.get("source") or "",
        "run_id": values.get("run_id") or None,
        "run_link": values.get("run_link"),
        "status": values.get("status") or "READY",
        "status_message": values.get("status_message"),
        "storage_location": values.get("storage_location") or values.get("source") or "",
        "model_id": model_id,
    }
