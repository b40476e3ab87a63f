"""MLflow 3 logged models: create, read, finalize, delete, tags, params, search, and runs' model outputs."""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import Any

from sqlalchemy import and_, case, delete, exists, insert, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from gateway.store import schema as s
from gateway.store.errors import InvalidValue, UnknownAttribute
from gateway.store.pages import offset_token, page_offset
from gateway.store.sql import compare, insert_statement, upsert
from gateway.tracking.limits import (
    MAX_LOGGED_MODELS,
    MAX_MODEL_NAME,
    MAX_MODEL_PARAMS,
    MAX_PARAM_VALUE,
    MAX_TAG_VALUE,
    MODEL_STATUSES,
)
from gateway.tracking.logged_model_filter import (
    MODEL_NUMERIC_ATTRIBUTES,
    logged_model_attribute,
    parse_logged_model_filter,
)
from gateway.tracking.search_filter import Comparison, InvalidFilter
from gateway.tracking.store.base import StoreBase
from gateway.tracking.store.sql import IN_BATCH
from gateway.tracking.store.values import (
    ACTIVE,
    DELETED,
    INT64_MAX,
    INT64_MIN,
    check_key,
    check_value,
    default_run_name,
    int_field,
    json_number,
    not_found,
    now_ms,
    possible_experiment_id,
    wrong_type,
)

MODEL_NAME_FORBIDDEN = ("/", ":", ".", "%", '"', "'")
"""Characters a logged model's name may not hold (MLflow's `_validate_logged_model_name`)."""
STATUS_NUMBERS = {"LOGGED_MODEL_STATUS_UNSPECIFIED": 0, **{status: n for n, status in enumerate(MODEL_STATUSES, 1)}}
"""MLflow's `LoggedModelStatus` enum: MLflow stores the number, and filters and sorts by it."""
_MODEL = s.logged_models.c
MODEL_COLUMNS: dict[str, Any] = {
    "model_id": _MODEL.model_id,
    "experiment_id": _MODEL.experiment_id,
    "name": _MODEL.name,
    "artifact_location": _MODEL.artifact_location,
    "creation_timestamp_ms": _MODEL.creation_timestamp,
    "last_updated_timestamp_ms": _MODEL.last_updated_timestamp,
    "status": _MODEL.status,
    "lifecycle_stage": _MODEL.lifecycle_stage,
    "model_type": _MODEL.model_type,
    "source_run_id": _MODEL.source_run_id,
    "status_message": _MODEL.status_message,
}
"""The columns behind the attribute names of MLflow's logged-model filters and order_by."""


def missing(name: str) -> InvalidValue:
    return InvalidValue(
        f"Missing value for required parameter '{name}'. See the API docs for more information about request "
        "parameters."
    )


class LoggedModelStore(StoreBase):
    """MLflow 3 logged models, and the runs that output them."""

    async def create_logged_model(self, body: dict[str, Any]) -> dict[str, Any]:
        model_id = f"m-{uuid.uuid4().hex}"
        name = body.get("name")
        if name is None or name == "":
            name = default_run_name()  # MLflow names a model as it names a run: 'bold-owl-42'
        if not isinstance(name, str):
            raise InvalidValue("Invalid value for parameter 'name': it must be a string")
        if any(char in name for char in MODEL_NAME_FORBIDDEN):
            raise InvalidValue(
                f"Invalid model name ({name!r}) provided. Model name must be a non-empty string and cannot contain "
                f"the following characters: {MODEL_NAME_FORBIDDEN}"
            )
        for field, value in (("name", name), ("model_type", body.get("model_type"))):
            if isinstance(value, str) and len(value) > MAX_MODEL_NAME:
                raise InvalidValue(f"'{field}' exceeds the maximum length of {MAX_MODEL_NAME} characters")
        tags = {
            check_key(tag.get("key")): check_value(tag.get("value"), MAX_TAG_VALUE, "value")
            for tag in body.get("tags") or []
        }  # a key given twice: the last value wins, as when tags are set one by one
        params = _checked_params(body.get("params") or [])
        stamp = now_ms()
        async with self.engine.begin() as conn:
            experiment = await self._experiment_row(conn, body.get("experiment_id"))
            source_run_id = body.get("source_run_id") or None  # not looked up, as MLflow: a link, not a check
            if source_run_id is not None and not isinstance(source_run_id, str):
                raise wrong_type(source_run_id, "source_run_id")
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
            for key, value in tags.items():
                await conn.execute(insert(s.logged_model_tags).values(model_id=model_id, key=key, value=value))
            for key, value in params.items():
                await conn.execute(insert(s.logged_model_params).values(model_id=model_id, key=key, value=value))
            return await self._model_json(conn, await self._model_row(conn, model_id))

    async def _model_json(self, conn: AsyncConnection, row: Any) -> dict[str, Any]:
        return (await self._models_json(conn, [row]))[0]

    async def _models_json(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        """Logged models in MLflow's shape; one query per child table for the whole page, not per model."""
        ids = [row.model_id for row in rows]

        async def children(table: Any, *order: Any) -> dict[str, list[Any]]:
            grouped: dict[str, list[Any]] = {model_id: [] for model_id in ids}
            for offset in range(0, len(ids), IN_BATCH):  # bound the bind parameters per statement
                query = select(table).where(table.c.model_id.in_(ids[offset : offset + IN_BATCH])).order_by(*order)
                for child in (await conn.execute(query)).all():
                    grouped[child.model_id].append(child)
            return grouped

        tags = await children(s.logged_model_tags, s.logged_model_tags.c.key)  # MLflow sorts them by key
        params = await children(s.logged_model_params, s.logged_model_params.c.key)
        lmm = s.logged_model_metrics.c
        metrics = await children(s.logged_model_metrics, lmm.key, lmm.step, lmm.timestamp, lmm.run_uuid)
        models = []
        for row in rows:
            info: dict[str, Any] = {
                "model_id": row.model_id,
                "experiment_id": str(row.experiment_id),
                "name": row.name,
                "artifact_uri": row.artifact_location,
                "creation_timestamp_ms": row.creation_timestamp,
                "last_updated_timestamp_ms": row.last_updated_timestamp,
                "status": row.status,
                # As MLflow answers them: empty when unset (its LoggedModelInfo has no lifecycle stage).
                "model_type": row.model_type or "",
                "source_run_id": row.source_run_id or "",
            }
            if row.status_message:
                info["status_message"] = row.status_message
            if tags[row.model_id]:
                info["tags"] = [{"key": t.key, "value": t.value} for t in tags[row.model_id]]
            data: dict[str, Any] = {}
            if params[row.model_id]:
                data["params"] = [{"key": p.key, "value": p.value} for p in params[row.model_id]]
            if metrics[row.model_id]:
                data["metrics"] = [_linked_metric(m) for m in metrics[row.model_id]]
            models.append({"info": info, "data": data})
        return models

    async def get_logged_model(self, model_id: object, *, allow_deleted: bool = False) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            return await self._model_json(conn, await self._model_row(conn, model_id, allow_deleted=allow_deleted))

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
        """Mark the model deleted; deleting it again is fine, as in MLflow."""
        async with self.engine.begin() as conn:
            row = await self._model_row(conn, model_id, allow_deleted=True)
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
            result = await conn.execute(
                delete(s.logged_model_tags).where(
                    s.logged_model_tags.c.model_id == row.model_id, s.logged_model_tags.c.key == check_key(key)
                )
            )
            if result.rowcount == 0:
                raise not_found(f"No tag with key '{key}' found for model with ID '{row.model_id}'.")

    async def log_logged_model_params(
        self, model_id: object, params: list[dict[str, Any]], body_model_id: object = None
    ) -> None:
        """MLflow's `log_model_params`: all of `params` or none. A key logged again with the same value
        is fine; with another value it is refused, as a run's params are (MLflow answers its SQL error)."""
        if body_model_id not in (None, "") and body_model_id != model_id:
            raise InvalidValue(
                f"Invalid value for parameter 'model_id': the body names model '{body_model_id}', the path "
                f"'{model_id}'; the path's is the one logged to (leave model_id out of the body or give the same)"
            )
        if len(params) > MAX_MODEL_PARAMS:
            raise InvalidValue(
                f"A request can log at most {MAX_MODEL_PARAMS} params to a logged model. Got {len(params)} params. "
                f"Send them in batches of at most {MAX_MODEL_PARAMS}, as MLflow's client does."
            )
        checked = _checked_params(params)
        async with self.engine.begin() as conn:
            row = await self._model_row(conn, model_id)
            p = s.logged_model_params.c
            for key, value in checked.items():
                # Insert unless the key is there (a concurrent writer's insert is waited for, not collided
                # with), then compare with what is there.
                inserted = await conn.execute(
                    insert_statement(conn, s.logged_model_params)
                    .values(model_id=row.model_id, key=key, value=value)
                    .on_conflict_do_nothing(index_elements=["model_id", "key"])
                )
                if inserted.rowcount == 1:
                    continue
                existing = await conn.scalar(select(p.value).where(p.model_id == row.model_id, p.key == key))
                if existing != value:
                    raise InvalidValue(
                        f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                        f"value='{existing}' for logged model ID='{row.model_id}'. Attempted logging new value "
                        f"'{value}'."
                    )

    async def search_logged_models(
        self,
        experiment_ids: object,
        filter_string: str | None,
        datasets: list[dict[str, Any]],
        max_results: int,
        order_by: list[dict[str, Any]],
        token: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the active logged models of `experiment_ids` that match, in MLflow's order.

        At most `max_results` models, and at most MAX_LOGGED_MODELS in one page: a larger
        `max_results` gets the first MAX_LOGGED_MODELS and a next_page_token.
        """
        ids = _experiment_ids(experiment_ids)
        if max_results < 1:
            raise InvalidValue(f"Invalid value {max_results} for parameter 'max_results': it must be positive")
        try:
            comparisons = parse_logged_model_filter(filter_string)
        except InvalidFilter as exc:
            raise InvalidValue(str(exc)) from None
        wanted = [_dataset_filter(item) for item in datasets]
        ordering = [_model_order(item) for item in order_by]
        search = _fingerprint(ids, filter_string, wanted, ordering)
        offset = page_offset(token, search)
        page = min(max_results, MAX_LOGGED_MODELS)
        ids = [number for number in ids if possible_experiment_id(number)]
        if not ids:
            return [], None
        async with self.engine.connect() as conn:
            query = select(s.logged_models).where(_MODEL.lifecycle_stage == ACTIVE, _MODEL.experiment_id.in_(ids))
            for comparison in comparisons:
                query = query.where(model_condition(comparison, wanted, conn.dialect.name))
            if wanted and not any(comparison.entity == "metric" for comparison in comparisons):
                # Datasets alone: the models with any metric on one of them (as MLflow).
                lmm = s.logged_model_metrics.c
                query = query.where(exists().where(lmm.model_id == _MODEL.model_id, _on_datasets(wanted)))
            rows = (await conn.execute(order_models(query, ordering).offset(offset).limit(page + 1))).all()
            found = await self._models_json(conn, rows[:page])
        return found, offset_token(offset + page, search) if len(rows) > page else None

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


def _checked_params(params: list[dict[str, Any]]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for param in params:
        key, value = check_key(param.get("key")), check_value(param.get("value"), MAX_PARAM_VALUE, "value")
        if checked.setdefault(key, value) != value:
            raise InvalidValue(f"Param '{key}' is given twice with different values")
    return checked


# -- search ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatasetFilter:
    """A `datasets` entry of a search: metrics logged against this dataset (any digest when None)."""

    name: str
    digest: str | None


@dataclass(frozen=True, slots=True)
class ModelOrder:
    """An `order_by` entry of a search: an attribute (`attribute` set) or a metric's latest value."""

    attribute: str | None
    metric: str | None
    ascending: bool
    dataset_name: str | None = None
    dataset_digest: str | None = None


def _experiment_ids(value: object) -> list[int]:
    if value is None:
        raise missing("experiment_ids")
    if not isinstance(value, list):
        shown = json.dumps(value, sort_keys=True, separators=(",", ":"))
        raise InvalidValue(
            f"Invalid value {shown[:200]} for parameter 'experiment_ids' supplied:  Hint: Value was of type "
            f"'{type(value).__name__}'. See the API docs for more information about request parameters."
        )
    return [int_field(item, "experiment_ids") for item in value]


def _optional_text(item: dict[str, Any], field: str, where: str) -> str | None:
    value = item.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidValue(f"Invalid value for '{field}' in {where}: it must be a string")
    return value


def _dataset_filter(item: dict[str, Any]) -> DatasetFilter:
    name = _optional_text(item, "dataset_name", "datasets")
    if name is None:
        raise InvalidValue("`dataset_name` in the `datasets` clause must be specified.")
    return DatasetFilter(name, _optional_text(item, "dataset_digest", "datasets"))


def _model_order(item: dict[str, Any]) -> ModelOrder:
    field = item.get("field_name")
    if not isinstance(field, str) or not field:
        raise InvalidValue("Invalid order by field name: each order_by entry needs a 'field_name'")
    ascending = item.get("ascending", True)
    if ascending is None:
        ascending = True
    if not isinstance(ascending, bool):
        raise InvalidValue(f"Invalid value for 'ascending' of order_by '{field}': it must be true or false")
    dataset_name = _optional_text(item, "dataset_name", "order_by")
    dataset_digest = _optional_text(item, "dataset_digest", "order_by")
    if "." not in field:
        attribute = logged_model_attribute(field)
        if attribute is None:
            raise UnknownAttribute(f"Invalid order by field name: {field}")
        if dataset_name or dataset_digest:
            raise InvalidValue(
                f"Invalid order_by '{field}': dataset_name and dataset_digest apply to metrics.<key> fields only"
            )
        return ModelOrder(attribute, None, ascending)
    entity, key = field.split(".", 1)
    if entity != "metrics":
        raise InvalidValue(f"Invalid order by field name: {field}. Only metrics are supported.")
    if not key:
        raise InvalidValue(f"Invalid order by field name: {field}. It names no metric")
    return ModelOrder(None, key, ascending, dataset_name, dataset_digest)


def _fingerprint(
    ids: list[int], filter_string: str | None, datasets: list[DatasetFilter], ordering: list[ModelOrder]
) -> str:
    """What a page token is bound to: the search it continues."""
    described = json.dumps([ids, filter_string or None, [astuple(d) for d in datasets], [astuple(o) for o in ordering]])
    return hashlib.sha256(described.encode()).hexdigest()[:16]


def _on_datasets(wanted: list[DatasetFilter]) -> ColumnElement[bool]:
    lmm = s.logged_model_metrics.c
    return or_(
        *(
            and_(lmm.dataset_name == d.name, lmm.dataset_digest == d.digest)
            if d.digest is not None
            else lmm.dataset_name == d.name
            for d in wanted
        )
    )


def _glob(pattern: str) -> str:
    """A LIKE pattern as SQLite's GLOB (its case-sensitive matcher): `%` and `_` are the wildcards,
    GLOB's own (`*`, `?`, `[`) are matched literally."""
    special = {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}
    return "".join(special.get(char, char) for char in pattern)


def _like(column: Any, pattern: str, dialect: str) -> ColumnElement[bool]:
    """`column LIKE pattern`, case-sensitive on every database, as MLflow's (which sets SQLite's
    `case_sensitive_like`)."""
    if dialect == "sqlite":
        return column.op("GLOB", is_comparison=True)(_glob(pattern))  # type: ignore[no-any-return]
    return column.like(pattern)  # type: ignore[no-any-return]


def _text_condition(column: Any, op: str, value: Any, dialect: str) -> ColumnElement[bool]:
    if op == "LIKE":
        return _like(column, value, dialect)
    return compare(column, op, value)


def _attribute_condition(key: str, op: str, value: Any, dialect: str) -> ColumnElement[bool]:
    column = MODEL_COLUMNS[key]
    if key in MODEL_NUMERIC_ATTRIBUTES:
        if not float(value).is_integer() or not INT64_MIN <= value <= INT64_MAX:
            raise InvalidValue(
                f"Invalid value for attributes.{key}: {json_number(value)} is not a whole number of milliseconds"
            )
        return compare(column, op, int(value))
    if key == "experiment_id":
        if op not in ("=", "!=", "IN", "NOT IN"):
            raise InvalidValue(
                f"Invalid comparison operator for attributes.experiment_id: '{op}'. "
                "Expected one of ('=', '!=', 'IN', 'NOT IN')."
            )
        values = value if isinstance(value, tuple) else (value,)
        ids = [number for number in (int_field(v, "experiment_id") for v in values) if possible_experiment_id(number)]
        return column.in_(ids) if op in ("=", "IN") else column.not_in(ids)  # type: ignore[no-any-return]
    if key == "status" and op not in ("LIKE", "ILIKE"):
        # MLflow stores the enum's number: `status = 2` and `status = 'LOGGED_MODEL_READY'` both work here.
        names = {str(number): name for name, number in STATUS_NUMBERS.items()}
        value = tuple(names.get(v, v) for v in value) if isinstance(value, tuple) else names.get(value, value)
    return _text_condition(column, op, value, dialect)


def model_condition(comparison: Comparison, datasets: list[DatasetFilter], dialect: str) -> ColumnElement[bool]:
    """One parsed comparison of a logged-model filter as a condition on `logged_models`."""
    entity, key, op, value = comparison.entity, comparison.key, comparison.op, comparison.value
    if entity == "attribute":
        return _attribute_condition(key, op, value, dialect)
    if entity == "metric":  # any linked point of the metric (any run, step or dataset), as MLflow
        lmm = s.logged_model_metrics.c
        on_datasets = [_on_datasets(datasets)] if datasets else []
        point = compare(lmm.value, op, value)
        return exists().where(lmm.model_id == _MODEL.model_id, lmm.key == key, not_(lmm.is_nan), point, *on_datasets)
    table = s.logged_model_params if entity == "param" else s.logged_model_tags
    return exists().where(
        table.c.model_id == _MODEL.model_id, table.c.key == key, _text_condition(table.c.value, op, value, dialect)
    )


def order_models(query: Any, ordering: list[ModelOrder]) -> Any:
    """MLflow's order: the given fields (missing values last), then the newest first, then model id."""
    clauses: list[Any] = []
    for order in ordering:
        if order.attribute is not None:
            column = MODEL_COLUMNS[order.attribute]
            value: Any = case(STATUS_NUMBERS, value=column, else_=0) if order.attribute == "status" else column
        else:  # the metric's latest point (newest timestamp, then step, then run id) on the datasets asked
            lmm = s.logged_model_metrics.c
            conditions = [lmm.model_id == _MODEL.model_id, lmm.key == order.metric]
            if order.dataset_name is not None:
                conditions.append(lmm.dataset_name == order.dataset_name)
            if order.dataset_digest is not None:
                conditions.append(lmm.dataset_digest == order.dataset_digest)
            value = (
                select(case((lmm.is_nan, None), else_=lmm.value))
                .where(*conditions)
                .order_by(lmm.timestamp.desc(), lmm.step.desc(), lmm.run_uuid)
                .limit(1)
                .scalar_subquery()
            )
        clauses.append((value.asc() if order.ascending else value.desc()).nulls_last())
    if not any(order.attribute == "creation_timestamp_ms" for order in ordering):
        clauses.append(_MODEL.creation_timestamp.desc())
    if not any(order.attribute == "model_id" for order in ordering):
        clauses.append(_MODEL.model_id)
    return query.order_by(*clauses)


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
