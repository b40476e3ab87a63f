"""A run's inputs (MLflow's `log_inputs`): the datasets it used, in MLflow's shape, and the logged models."""

from __future__ import annotations

import json
from typing import Any

from gateway.store import schema as s
from gateway.store.errors import InvalidValue
from gateway.tracking.store.base import StoreBase
from gateway.tracking.store.sql import insert_statement, upsert


class DatasetStore(StoreBase):
    """A run's inputs: datasets and logged models."""

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
