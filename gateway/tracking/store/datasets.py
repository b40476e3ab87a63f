"""A run's inputs (MLflow's `log_inputs`): the datasets it used, in MLflow's shape, and the logged models."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from gateway.store import schema as s
from gateway.store.errors import InvalidValue
from gateway.store.sql import insert_statement, upsert
from gateway.tracking.limits import DATASET_FIELD_LIMITS, MAX_INPUT_TAG_KEY, MAX_INPUT_TAG_VALUE
from gateway.tracking.store.base import StoreBase
from gateway.tracking.store.values import check_length, possible_experiment_id

DATASET_CONTEXT_TAG = "mlflow.data.context"
MAX_DATASET_SUMMARIES = 1000


class DatasetStore(StoreBase):
    """A run's inputs (datasets and logged models), and the datasets an experiment's runs used."""

    async def search_datasets(self, experiment_ids: list[int]) -> list[dict[str, Any]]:
        """The distinct (experiment, dataset name, digest, context) of the experiments' runs' inputs, as
        MLflow's UI lists them (at most 1,000)."""
        query = (
            select(s.runs.c.experiment_id, s.run_inputs.c.name, s.run_inputs.c.digest, s.run_inputs.c.tags)
            .join(s.runs, s.runs.c.run_uuid == s.run_inputs.c.run_uuid)
            .where(s.runs.c.experiment_id.in_([i for i in experiment_ids if possible_experiment_id(i)]))
            .distinct()
            .order_by(s.runs.c.experiment_id, s.run_inputs.c.name, s.run_inputs.c.digest)
        )
        summaries: dict[tuple[int, str, str, str | None], None] = {}
        async with self.engine.connect() as conn:
            async for row in await conn.stream(query):
                context = next(
                    (tag.get("value") for tag in json.loads(row.tags) if tag.get("key") == DATASET_CONTEXT_TAG), None
                )
                summaries[(row.experiment_id, row.name, row.digest, context)] = None
                if len(summaries) >= MAX_DATASET_SUMMARIES:
                    break
        found = []
        for experiment_id, name, digest, context in summaries:
            summary = {"experiment_id": str(experiment_id), "name": name, "digest": digest}
            if context is not None:
                summary["context"] = context
            found.append(summary)
        return found

    async def log_inputs(
        self, run_id: object, datasets: list[dict[str, Any]], models: list[dict[str, Any]] | None = None
    ) -> None:
        """Record what the run used, all or nothing; logging an input again changes nothing.

        A model input must name a logged model that exists (MLflow stores any id, even an empty one).
        """
        model_ids = []
        for model in models or []:
            model_id = model.get("model_id")
            if not isinstance(model_id, str) or not model_id:
                raise InvalidValue("Missing value for required parameter 'models[].model_id'")
            model_ids.append(model_id)
        async with self.engine.begin() as conn:
            row = await self._active_run(conn, run_id)
            for model_id in dict.fromkeys(model_ids):
                await self._model_row(conn, model_id)
                await conn.execute(
                    insert_statement(conn, s.run_model_inputs)
                    .values(run_uuid=row.run_uuid, model_id=model_id)
                    .on_conflict_do_nothing(index_elements=["run_uuid", "model_id"])
                )
            for item in datasets:
                dataset = item.get("dataset") or {}
                if not isinstance(dataset, dict):
                    raise InvalidValue("Each dataset input's 'dataset' must be a JSON object")
                name, digest = dataset.get("name"), dataset.get("digest")
                if not isinstance(name, str) or not isinstance(digest, str) or not name or not digest:
                    raise InvalidValue("Each dataset input needs a 'dataset' with 'name' and 'digest'")
                for field in ("source_type", "source", "schema", "profile"):
                    if dataset.get(field) is not None and not isinstance(dataset[field], str):
                        raise InvalidValue(f"The dataset's '{field}' must be a string")
                for field, limit in DATASET_FIELD_LIMITS.items():
                    check_length(dataset.get(field) or "", limit, field)
                _check_input_tags(item.get("tags"))
                await upsert(
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


def dataset_input(row: Any) -> dict[str, Any]:
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


def _check_input_tags(tags: object) -> None:
    """A dataset input's tags: a list of {"key", "value"} strings within MLflow's input-tag limits."""
    if tags is None:
        return
    if not isinstance(tags, list) or not all(isinstance(tag, dict) for tag in tags):
        raise InvalidValue('A dataset input\'s \'tags\' must be a list of {"key", "value"} objects')
    for tag in tags:
        key, value = tag.get("key"), tag.get("value", "")
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise InvalidValue("Each dataset input tag needs a string 'key' and 'value'")
        check_length(key, MAX_INPUT_TAG_KEY, "key")
        check_length(value, MAX_INPUT_TAG_VALUE, "value")
