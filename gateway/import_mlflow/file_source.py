"""An MLflow file store (`./mlruns`, written with MLFLOW_TRACKING_URI=./mlruns) read from its files:
meta.yaml per experiment, run, logged model, registered model and version; one file per param and
tag; one line per metric point ("timestamp value step"). Files are read in worker threads."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML: MLflow writes the file store's meta.yaml with it

from gateway.import_mlflow.rows import (
    LOGGED_MODEL_STATUSES,
    RUN_STATUSES,
    SPANS_LOCATION,
    TRACKING_STORE,
    Inventory,
    Point,
    Row,
    Rows,
    SourceError,
    latest_of,
    model_version_record,
    point,
)
from gateway.import_mlflow.spans import span_row

_SKIP = {".trash", "models", ".DS_Store"}


def _meta(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _files(folder: Path) -> dict[str, str]:
    """Every file under `folder` as {relative key: content}: keys with '/' are nested folders."""
    found: dict[str, str] = {}
    if not folder.is_dir():
        return found
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            found[str(path.relative_to(folder))] = path.read_text()
    return found


def _status(value: Any) -> str:
    if isinstance(value, int):
        return RUN_STATUSES.get(value, "FINISHED")
    return str(value or "FINISHED")


def _to_ms(value: Any) -> int:
    """A time in trace_info.yaml: an RFC 3339 string or milliseconds."""
    if isinstance(value, int | float):
        return int(value)
    import datetime

    text = str(value).replace("Z", "+00:00")
    return int(datetime.datetime.fromisoformat(text).timestamp() * 1000)


class FileSource:
    """An MLflow file store directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = str(root)
        self._experiment_dirs: dict[int, Path] = {}
        self._run_dirs: dict[str, Path] = {}
        self._trace_dirs: dict[str, Path] = {}

    @classmethod
    async def open(cls, root: Path) -> FileSource:
        if not await asyncio.to_thread(root.is_dir):
            raise SourceError(f"the MLflow file store {root} does not exist")
        source = cls(root)
        await asyncio.to_thread(source._scan)
        if not source._experiment_dirs:
            raise SourceError(f"{root} is not an MLflow file store (no experiment with a meta.yaml)")
        return source

    async def close(self) -> None:
        return None

    def _scan(self) -> None:
        for parent in (self.root, self.root / ".trash"):
            if not parent.is_dir():
                continue
            for folder in sorted(parent.iterdir()):
                if folder.name in _SKIP or not (folder / "meta.yaml").is_file() or not folder.name.isdigit():
                    continue
                self._experiment_dirs[int(folder.name)] = folder
                for run in sorted(folder.iterdir()):
                    if len(run.name) == 32 and (run / "meta.yaml").is_file():
                        self._run_dirs[run.name] = run
                traces = folder / "traces"
                if traces.is_dir():
                    for trace in sorted(traces.iterdir()):
                        if (trace / "trace_info.yaml").is_file():
                            self._trace_dirs[trace.name] = trace

    def _experiments(self) -> Rows:
        rows: Rows = {"experiments": [], "experiment_tags": []}
        for experiment_id, folder in self._experiment_dirs.items():
            meta = _meta(folder / "meta.yaml")
            deleted = folder.parent.name == ".trash"
            rows["experiments"].append(
                {
                    "experiment_id": experiment_id,
                    "name": meta.get("name") or str(experiment_id),
                    "artifact_location": meta.get("artifact_location") or "",
                    "lifecycle_stage": "deleted" if deleted else meta.get("lifecycle_stage") or "active",
                    "creation_time": meta.get("creation_time") or 0,
                    "last_update_time": meta.get("last_update_time") or meta.get("creation_time") or 0,
                }
            )
            rows["experiment_tags"] += [
                {"experiment_id": experiment_id, "key": key, "value": value}
                for key, value in _files(folder / "tags").items()
            ]
        return rows

    async def experiments(self) -> Rows:
        return await asyncio.to_thread(self._experiments)

    def _logged_models(self, experiment_ids: list[int]) -> Rows:
        rows: Rows = {"logged_models": [], "logged_model_tags": [], "logged_model_params": []}
        for experiment_id in experiment_ids:
            models = self._experiment_dirs[experiment_id] / "models"
            if not models.is_dir():
                continue
            for folder in sorted(models.iterdir()):
                meta = _meta(folder / "meta.yaml")
                if not meta.get("model_id"):
                    continue
                model_id = meta["model_id"]
                status = meta.get("status")
                rows["logged_models"].append(
                    {
                        "model_id": model_id,
                        "experiment_id": experiment_id,
                        "name": meta.get("name") or "",
                        "artifact_location": meta.get("artifact_location") or "",
                        "creation_timestamp": meta.get("creation_timestamp") or 0,
                        "last_updated_timestamp": meta.get("last_updated_timestamp") or 0,
                        "status": LOGGED_MODEL_STATUSES.get(status, "LOGGED_MODEL_STATUS_UNSPECIFIED")
                        if isinstance(status, int)
                        else str(status or "LOGGED_MODEL_STATUS_UNSPECIFIED"),
                        "status_message": meta.get("status_message"),
                        "lifecycle_stage": meta.get("lifecycle_stage") or "active",
                        "model_type": meta.get("model_type"),
                        "source_run_id": meta.get("source_run_id"),
                    }
                )
                rows["logged_model_tags"] += [
                    {"model_id": model_id, "key": k, "value": v} for k, v in _files(folder / "tags").items()
                ]
                rows["logged_model_params"] += [
                    {"model_id": model_id, "key": k, "value": v} for k, v in _files(folder / "params").items()
                ]
        return rows

    async def logged_models(self, experiment_ids: list[int]) -> Rows:
        return await asyncio.to_thread(self._logged_models, experiment_ids)

    async def run_ids(self, experiment_ids: list[int]) -> list[str]:
        wanted = {self._experiment_dirs[number] for number in experiment_ids}
        return [run_id for run_id, folder in self._run_dirs.items() if folder.parent in wanted]

    def _points(self, run_id: str) -> list[Point]:
        points: set[Point] = set()  # a point is stored once
        for key, text in _files(self._run_dirs[run_id] / "metrics").items():
            for line in text.splitlines():
                parts = line.split()
                if len(parts) >= 2:
                    points.add(
                        point(run_id, key, float(parts[1]), int(parts[0]), int(parts[2]) if len(parts) > 2 else 0)
                    )
        return list(points)

    def _runs(self, run_ids: list[str]) -> Rows:
        rows: Rows = {
            name: []
            for name in (
                "runs",
                "params",
                "tags",
                "latest_metrics",
                "run_inputs",
                "run_outputs",
                "run_model_inputs",
                "logged_model_metrics",
            )
        }
        for run_id in run_ids:
            folder = self._run_dirs[run_id]
            meta = _meta(folder / "meta.yaml")
            tags = _files(folder / "tags")
            experiment_id = int(folder.parent.name)
            rows["runs"].append(
                {
                    "run_uuid": run_id,
                    "experiment_id": experiment_id,
                    "name": meta.get("run_name") or tags.get("mlflow.runName") or "",
                    "user_id": meta.get("user_id") or "",
                    "status": _status(meta.get("status")),
                    "start_time": meta.get("start_time") or 0,
                    "end_time": meta.get("end_time"),
                    "lifecycle_stage": meta.get("lifecycle_stage") or "active",
                    "artifact_uri": meta.get("artifact_uri") or "",
                    "deleted_time": meta.get("deleted_time"),
                }
            )
            rows["params"] += [{"run_uuid": run_id, "key": k, "value": v} for k, v in _files(folder / "params").items()]
            rows["tags"] += [{"run_uuid": run_id, "key": k, "value": v} for k, v in tags.items()]
            rows["latest_metrics"] += latest_of(self._points(run_id))
            self._run_inputs(run_id, folder, rows)
        rows["logged_model_metrics"] = self._model_metrics(set(run_ids))
        return rows

    def _model_metrics(self, run_ids: set[str]) -> list[Row]:
        """The links of these runs' points to logged models: a model's metrics/<key> lines
        ("timestamp value step run_id [dataset_name dataset_digest]")."""
        found: list[Row] = []
        experiments = {self._run_dirs[run_id].parent for run_id in run_ids}
        for experiment in experiments:
            models = experiment / "models"
            if not models.is_dir():
                continue
            for model in sorted(models.iterdir()):
                for key, text in _files(model / "metrics").items():
                    for line in text.splitlines():
                        parts = line.split()
                        if len(parts) < 4 or parts[3] not in run_ids:
                            continue
                        run_uuid, name, value, nan, timestamp, step = point(
                            parts[3], key, float(parts[1]), int(parts[0]), int(parts[2])
                        )
                        found.append(
                            {
                                "model_id": model.name,
                                "key": name,
                                "timestamp": timestamp,
                                "step": step,
                                "run_uuid": run_uuid,
                                "value": value,
                                "is_nan": nan,
                                "experiment_id": int(experiment.name),
                                "dataset_name": parts[4] if len(parts) > 4 else None,
                                "dataset_digest": parts[5] if len(parts) > 5 else None,
                            }
                        )
        return found

    def _run_inputs(self, run_id: str, folder: Path, rows: Rows) -> None:
        datasets = folder.parent / "datasets"
        for kind in ("inputs", "outputs"):
            edges = folder / kind
            if not edges.is_dir():
                continue
            for edge_dir in sorted(edges.iterdir()):
                edge = _meta(edge_dir / "meta.yaml")
                if edge.get("source_type") == "DATASET":
                    dataset = _meta(datasets / str(edge.get("source_id")) / "meta.yaml")
                    if not dataset:
                        continue
                    tags = edge.get("tags") or {}
                    rows["run_inputs"].append(
                        {
                            "run_uuid": run_id,
                            "name": dataset.get("name") or "",
                            "digest": dataset.get("digest") or "",
                            "source_type": dataset.get("source_type") or "",
                            "source": dataset.get("source") or "",
                            "schema": dataset.get("schema"),
                            "profile": dataset.get("profile"),
                            "tags": json.dumps([{"key": k, "value": v} for k, v in tags.items()]),
                        }
                    )
                elif edge.get("destination_type") == "MODEL_OUTPUT":
                    rows["run_outputs"].append(
                        {"run_uuid": run_id, "model_id": edge["destination_id"], "step": edge.get("step") or 0}
                    )
                elif edge.get("source_type") == "MODEL":
                    rows["run_model_inputs"].append({"run_uuid": run_id, "model_id": edge["source_id"]})

    async def runs(self, run_ids: list[str]) -> Rows:
        return await asyncio.to_thread(self._runs, run_ids)

    async def metric_points(self, run_ids: list[str], batch: int) -> AsyncIterator[list[Point]]:
        pending: list[Point] = []
        for run_id in run_ids:
            pending += await asyncio.to_thread(self._points, run_id)
            while len(pending) >= batch:
                yield pending[:batch]
                pending = pending[batch:]
        if pending:
            yield pending

    def _registered_models(self) -> list[Rows]:
        models = self.root / "models"
        found: list[Rows] = []
        if not models.is_dir():
            return found
        for folder in sorted(models.iterdir()):
            meta = _meta(folder / "meta.yaml")
            if not meta.get("name"):
                continue
            name = meta["name"]
            model: Rows = {
                "registered_models": [
                    {
                        "name": name,
                        "creation_time": meta.get("creation_timestamp") or 0,
                        "last_updated_time": meta.get("last_updated_timestamp") or 0,
                        "description": meta.get("description"),
                    }
                ],
                "registered_model_tags": [
                    {"name": name, "key": k, "value": v} for k, v in _files(folder / "tags").items()
                ],
                "model_versions": [],
                "model_version_tags": [],
                "registered_model_aliases": [],
                "deleted_versions": [],
            }
            for version_dir in sorted(folder.glob("version-*")):
                version = _meta(version_dir / "meta.yaml")
                if "version" not in version:
                    continue
                number = int(version["version"])
                if version.get("current_stage") == "Deleted_Internal":
                    model["deleted_versions"].append({"version": number})
                    continue
                model["model_versions"].append(
                    model_version_record(
                        version,
                        name,
                        number,
                        version.get("creation_timestamp") or 0,
                        version.get("last_updated_timestamp") or 0,
                        version.get("model_id"),
                    )
                )
                model["model_version_tags"] += [
                    {"name": name, "version": number, "key": k, "value": v}
                    for k, v in _files(version_dir / "tags").items()
                ]
            numbers = {v["version"] for v in model["model_versions"]}
            model["registered_model_aliases"] = [
                {"name": name, "alias": alias, "version": int(value.strip())}
                for alias, value in _files(folder / "aliases").items()
                if value.strip().isdigit() and int(value.strip()) in numbers
            ]
            found.append(model)
        return found

    async def registered_models(self) -> list[Rows]:
        return await asyncio.to_thread(self._registered_models)

    async def trace_ids(self, experiment_ids: list[int]) -> list[str]:
        wanted = {self._experiment_dirs[number] for number in experiment_ids}
        return [trace_id for trace_id, folder in self._trace_dirs.items() if folder.parent.parent in wanted]

    def _traces(self, trace_ids: list[str]) -> Rows:
        rows: Rows = {
            name: [] for name in ("trace_info", "trace_tags", "trace_request_metadata", "spans", "assessments")
        }
        for trace_id in trace_ids:
            folder = self._trace_dirs[trace_id]
            info = _meta(folder / "trace_info.yaml")
            duration = info.get("execution_duration_ms", info.get("execution_time_ms"))
            rows["trace_info"].append(
                {
                    "trace_id": trace_id,
                    "experiment_id": int(folder.parent.parent.name),
                    "request_time": _to_ms(info.get("request_time", info.get("timestamp_ms", 0))),
                    "execution_duration": None if duration is None else int(duration),
                    "state": info.get("state") or info.get("status") or "STATE_UNSPECIFIED",
                    "request_preview": info.get("request_preview"),
                    "response_preview": info.get("response_preview"),
                    "client_request_id": info.get("client_request_id"),
                }
            )
            tags = _files(folder / "tags")
            try:
                spans = json.loads((folder / "artifacts" / "traces.json").read_text()).get("spans") or []
            except (OSError, ValueError):
                spans = []
            if spans:
                tags[SPANS_LOCATION] = TRACKING_STORE
                rows["spans"] += [span_row(trace_id, span) for span in spans]
            rows["trace_tags"] += [{"trace_id": trace_id, "key": k, "value": v} for k, v in tags.items()]
            rows["trace_request_metadata"] += [
                {"trace_id": trace_id, "key": k, "value": v} for k, v in _files(folder / "request_metadata").items()
            ]
        return rows

    async def traces(self, trace_ids: list[str]) -> Rows:
        return await asyncio.to_thread(self._traces, trace_ids)

    async def inventory(self) -> Inventory:
        found = Inventory()
        experiments = await self.experiments()
        found.add("experiments", len(experiments["experiments"]))
        found.add("experiment tags", len(experiments["experiment_tags"]))
        ids = [row["experiment_id"] for row in experiments["experiments"]]
        run_ids = await self.run_ids(ids)
        for at in range(0, len(run_ids), 200):
            rows = await self.runs(run_ids[at : at + 200])
            for entity, table in (
                ("runs", "runs"),
                ("params", "params"),
                ("run tags", "tags"),
                ("dataset inputs", "run_inputs"),
            ):
                found.add(entity, len(rows[table]))
        async for batch in self.metric_points(run_ids, 100_000):
            found.add("metric points", len(batch))
        found.add("logged models", len((await self.logged_models(ids)).get("logged_models", [])))
        models = await self.registered_models()
        found.add("registered models", len(models))
        found.add("model versions", sum(len(m["model_versions"]) for m in models))
        found.add("aliases", sum(len(m["registered_model_aliases"]) for m in models))
        trace_ids = await self.trace_ids(ids)
        traces = await self.traces(trace_ids)
        found.add("traces", len(traces["trace_info"]))
        found.add("spans", len(traces["spans"]))
        found.add("assessments", 0)
        return found
