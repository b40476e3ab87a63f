"""MLflow's tracking REST API (`/api/2.0/mlflow/...` and `/ajax-api/2.0/mlflow/...`) over the store.

Requests are parsed here (JSON bodies for POST/PATCH, query strings for GET, as MLflow's client
sends them); every rule about what is valid lives in the store, which raises its own errors
(`gateway.store.errors`), mapped to MLflow's JSON in `gateway.http.errors`.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from aiohttp import web

from gateway.http.access import Access
from gateway.http.app_keys import STORE_KEY
from gateway.http.errors import ApiError
from gateway.http.json_api import EncodedJson, Handler, add_json_routes
from gateway.http.prefixes import TRACKING_PREFIXES
from gateway.locations import LOCATIONS_KEY
from gateway.tracking.limits import (
    DEFAULT_LOGGED_MODELS,
    DEFAULT_SEARCH_RESULTS,
    MAX_BULK_RUNS,
    MAX_HISTORY,
    MAX_SEARCH_RESULTS,
    ZERO_LOGGED_MODELS,
)
from gateway.tracking.store import MetricPoint, TrackingStore, check_key, int_field, metric_value, missing, wrong_type
from gateway.tracking.store.experiments import experiment_name
from gateway.tracking.store.values import INT64_MAX, INT64_MIN

MAX_SAMPLED_POINTS = 2500
"""Points per run of the sampled history route (MLflow's MAX_RESULTS_PER_RUN)."""
MAX_DATASET_EXPERIMENTS = 20
"""Experiments per dataset search, as MLflow's UI route allows."""


def _store(request: web.Request) -> TrackingStore:
    return request.app[STORE_KEY]


def _run_id(fields: dict[str, Any]) -> Any:
    """The request's run id (run_uuid is MLflow's older name for it); checked first, as MLflow does."""
    run_id = fields.get("run_id") or fields.get("run_uuid")
    if run_id is not None and not isinstance(run_id, str):
        raise wrong_type(run_id, "run_id")
    return run_id


def _list(fields: dict[str, Any], name: str) -> list[Any]:
    value = fields.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        return [value]
    return value


def _text(fields: dict[str, Any], name: str) -> str | None:
    """An optional string field (None when missing or empty); any other JSON type is a 400."""
    value = fields.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError.invalid(f"Invalid value for parameter '{name}': it must be a string")
    return value


def _objects(fields: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """A list of JSON objects (params, tags, metrics, datasets, models); anything else is a 400."""
    if (given := fields.get(name)) and not isinstance(given, list):
        raise wrong_type(given, name)
    items = _list(fields, name)
    if not all(isinstance(item, dict) for item in items):
        raise ApiError.invalid(f"Invalid value for parameter '{name}': every entry must be a JSON object")
    return items


def _json_list(request: web.Request, fields: dict[str, Any], name: str) -> list[Any]:
    """A repeated field: a JSON array in a body (anything else is MLflow's type error), one or more
    query arguments in a GET."""
    value = fields.get(name)
    if value is not None and not isinstance(value, list) and request.method != "GET":
        raise wrong_type(value, name)
    return _list(fields, name)


def _view_type(fields: dict[str, Any], name: str) -> str | None:
    """A view type: its name or MLflow's number for it (1, 2 or 3)."""
    value = fields.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(fields, name)


def _bounded(fields: dict[str, Any], name: str, default: int, limit: int) -> int:
    value = int_field(fields.get(name), name, default=default)
    if not 1 <= value <= limit:
        raise ApiError.invalid(f"Invalid value {value} for parameter '{name}': it must be from 1 to {limit}")
    return value


def _metric(
    fields: dict[str, Any], index: int | None = None, checked_keys: dict[str, str] | None = None
) -> MetricPoint:
    """A metric point checked in MLflow's order (key, value, timestamp, step; the key's length last),
    with MLflow's field names: `metrics[index].` inside a batch, where `checked_keys` keeps the keys
    already found good (a batch of 1,000 points usually has a few keys)."""
    key = fields.get("key")
    if key is None or key == "":
        raise missing(f"{_prefix(index)}key")
    value, timestamp, step = fields.get("value"), fields.get("timestamp"), fields.get("step", 0)
    # What the stock client sends (a finite float, integers in range) skips the general checks below:
    # a batch is 1,000 points, and they were a fifth of its time in the server.
    if not (
        type(value) is float
        and math.isfinite(value)
        and type(timestamp) is int
        and 0 <= timestamp <= INT64_MAX
        and type(step) is int
        and INT64_MIN <= step <= INT64_MAX
    ):
        value, timestamp, step = _metric_numbers(fields, _prefix(index), key)
    checked = checked_keys.get(key) if checked_keys is not None and isinstance(key, str) else None
    if checked is None:
        prefix = _prefix(index)
        checked = check_key(key, f"{prefix}key", name_field=f"{prefix}name", label="Metric name")
        if checked_keys is not None:
            checked_keys[checked] = checked
    if len(fields) == 4 and "step" in fields:  # the stock client's point: no link to look for
        return MetricPoint(checked, value, timestamp, step)
    return MetricPoint(
        checked,
        value,
        timestamp,
        step,
        model_id=_text(fields, "model_id") if "model_id" in fields else None,
        dataset_name=_text(fields, "dataset_name") if "dataset_name" in fields else None,
        dataset_digest=_text(fields, "dataset_digest") if "dataset_digest" in fields else None,
    )


def _prefix(index: int | None) -> str:
    """How a batch's error names its `index`th metric's fields (`metrics[3].value`); a single metric's are bare."""
    return "" if index is None else f"metrics[{index}]."


def _metric_numbers(fields: dict[str, Any], prefix: str, key: object) -> tuple[float, int, int]:
    """A metric's value, timestamp and step, each checked and converted as MLflow does, in its order."""
    value = metric_value(fields.get("value"), f"{prefix}value")
    if math.isinf(value):  # as MLflow's SQL store keeps it: the largest double of that sign
        value = math.copysign(sys.float_info.max, value)
    timestamp = int_field(fields.get("timestamp"), f"{prefix}timestamp")
    if timestamp < 0:
        raise ApiError.invalid(
            f"Invalid value {timestamp} for parameter '{prefix}timestamp' supplied: metric '{key}' "
            f"(value={value}). Timestamp must be a nonnegative long (64-bit integer) "
        )
    step = int_field(fields.get("step"), f"{prefix}step", default=0)
    return value, timestamp, step


def _with_token(body: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token:
        body["next_page_token"] = token
    return body


def _encoded_page(name: str, items: str | None, token: str | None) -> EncodedJson:
    """A page's answer from its items' JSON array text (left out when there are none) and its token:
    the text `json.dumps` gives of `_with_token({name: items} if items else {}, token)`."""
    members = [f'"{name}": {items}'] if items else []
    if token:
        members.append(f'"next_page_token": {json.dumps(token)}')
    return EncodedJson("{" + ", ".join(members) + "}")


# -- experiments -------------------------------------------------------------------------------


async def create_experiment(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    # MLflow checks the fields' types in order (name, artifact_location, tags) before their values.
    experiment_name(fields.get("name"))
    location = fields.get("artifact_location") or None
    if location is not None and not isinstance(location, str):
        raise wrong_type(location, "artifact_location")
    tags = _json_list(request, fields, "tags")
    if not all(isinstance(tag, dict) for tag in tags):
        raise ApiError.invalid("Invalid value for parameter 'tags': every entry must be a JSON object")
    if location is not None:
        location = request.app[LOCATIONS_KEY].validate(location)
    return {"experiment_id": await _store(request).create_experiment(fields.get("name"), location, tags)}


async def get_experiment(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    return {"experiment": await _store(request).get_experiment(fields.get("experiment_id"))}


async def get_experiment_by_name(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    return {"experiment": await _store(request).get_experiment_by_name(fields.get("experiment_name"))}


async def search_experiments(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    order_by = _json_list(request, fields, "order_by")
    if not all(isinstance(item, str) for item in order_by):
        raise ApiError.invalid("Invalid value for parameter 'order_by': every entry must be a string")
    found, token = await _store(request).search_experiments(
        _view_type(fields, "view_type") or "ACTIVE_ONLY",
        _bounded(fields, "max_results", DEFAULT_SEARCH_RESULTS, MAX_SEARCH_RESULTS),
        _text(fields, "filter"),
        fields.get("page_token") or None,
        order_by=order_by,
    )
    return _with_token({"experiments": found} if found else {}, token)


async def update_experiment(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await _store(request).update_experiment(fields.get("experiment_id"), fields.get("new_name"))
    return {}


async def delete_experiment(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await _store(request).set_experiment_lifecycle(fields.get("experiment_id"), "deleted")
    return {}


async def restore_experiment(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await _store(request).set_experiment_lifecycle(fields.get("experiment_id"), "active")
    return {}


async def set_experiment_tag(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await _store(request).set_experiment_tag(fields.get("experiment_id"), fields.get("key"), fields.get("value"))
    return {}


async def delete_experiment_tag(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await _store(request).delete_experiment_tag(fields.get("experiment_id"), fields.get("key"))
    return {}


# -- runs --------------------------------------------------------------------------------------


async def create_run(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "run": await _store(request).create_run(
            fields.get("experiment_id"),
            fields.get("user_id"),
            fields.get("start_time"),
            fields.get("run_name"),
            _objects(fields, "tags"),
        )
    }


async def get_run(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    return {"run": await _store(request).get_run(_run_id(fields))}


async def update_run(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_info": await _store(request).update_run(
            _run_id(fields), fields.get("status"), fields.get("end_time"), fields.get("run_name")
        )
    }


async def delete_run(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await _store(request).set_run_lifecycle(_run_id(fields), "deleted")
    return {}


async def restore_run(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await _store(request).set_run_lifecycle(_run_id(fields), "active")
    return {}


async def log_metric(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await _store(request).log_batch(_run_id(fields), [_metric(fields)], [], [], batch=False)
    return {}


async def log_parameter(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    param = {"key": fields.get("key"), "value": fields.get("value")}
    await _store(request).log_batch(_run_id(fields), [], [param], [], batch=False)
    return {}


async def set_tag(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    tag = {"key": fields.get("key"), "value": fields.get("value")}
    await _store(request).log_batch(_run_id(fields), [], [], [tag], batch=False)
    return {}


async def delete_tag(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await _store(request).delete_tag(_run_id(fields), fields.get("key"))
    return {}


async def log_batch(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    keys: dict[str, str] = {}
    metrics = [_metric(item, index, keys) for index, item in enumerate(_objects(fields, "metrics"))]
    await _store(request).log_batch(_run_id(fields), metrics, _objects(fields, "params"), _objects(fields, "tags"))
    return {}


async def log_inputs(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await _store(request).log_inputs(_run_id(fields), _objects(fields, "datasets"), _objects(fields, "models"))
    return {}


async def log_outputs(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    if not fields.get("models"):
        raise missing("models")
    await _store(request).log_outputs(_run_id(fields), _objects(fields, "models"))
    return {}


async def search_runs(request: web.Request, fields: dict[str, Any]) -> EncodedJson:
    """The runs come as JSON text from the store, written in its reader thread: placed as they are."""
    order_by = [str(item) for item in _list(fields, "order_by")]
    found, token = await _store(request).search_runs_text(
        _list(fields, "experiment_ids"),
        _text(fields, "filter"),
        _view_type(fields, "run_view_type"),
        int_field(fields.get("max_results"), "max_results", default=1000),
        order_by,
        fields.get("page_token") or None,
    )
    return _encoded_page("runs", "[" + ", ".join(found) + "]" if found else None, token)


async def get_metric_history(request: web.Request, fields: dict[str, Any]) -> EncodedJson:
    """The points come as JSON text from the store (a long history is thousands): placed as they are."""
    points, token = await _store(request).metric_history(
        _run_id(fields),
        fields.get("metric_key"),
        _bounded(fields, "max_results", MAX_HISTORY, MAX_HISTORY),
        fields.get("page_token") or None,
    )
    return _encoded_page("metrics", points, token)


async def get_metric_history_bulk(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    """MLflow's UI route: one metric's history for up to 100 runs, each run's points in time order.

    As MLflow: runs in id order, points sorted by (timestamp, step, value), each with its `run_id`,
    at most `max_results` (25,000) points in all. Unlike MLflow, a non-numeric max_results is a 400.
    """
    run_ids = [str(run_id) for run_id in _list(fields, "run_id")]
    if not run_ids:
        raise ApiError.invalid("GetMetricHistoryBulk request must specify at least one run_id.")
    if len(run_ids) > MAX_BULK_RUNS:
        raise ApiError.invalid(
            f"GetMetricHistoryBulk request cannot specify more than {MAX_BULK_RUNS} run_ids. "
            f"Received {len(run_ids)} run_ids."
        )
    key = fields.get("metric_key")
    if key is None:
        raise ApiError.invalid("GetMetricHistoryBulk request must specify a metric_key.")
    max_results = min(int_field(fields.get("max_results"), "max_results", default=MAX_HISTORY), MAX_HISTORY)
    if max_results < 1:
        raise ApiError.invalid(f"'max_results' must be from 1 to {MAX_HISTORY}, got {max_results}")
    return {"metrics": await _store(request).metric_history_bulk(run_ids, key, max_results)}


async def get_metric_history_bulk_interval(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    """MLflow's UI route for charts: each run's history of one metric, sampled to `max_results` points."""
    run_ids = [str(run_id) for run_id in _list(fields, "run_ids")]
    if not run_ids:
        raise missing("run_ids")
    if len(run_ids) > MAX_BULK_RUNS:
        raise ApiError.invalid(
            f"GetMetricHistoryBulkInterval request must specify at most {MAX_BULK_RUNS} run_ids. "
            f"Received {len(run_ids)} run_ids. See the API docs for more information about request parameters."
        )
    key = _text(fields, "metric_key")
    if key is None:
        raise missing("metric_key")
    max_results = int_field(fields.get("max_results"), "max_results", default=MAX_SAMPLED_POINTS)
    if not 1 <= max_results <= MAX_SAMPLED_POINTS:
        raise ApiError.invalid(
            f"max_results must be between 1 and {MAX_SAMPLED_POINTS}. "
            "See the API docs for more information about request parameters."
        )
    start, end = fields.get("start_step"), fields.get("end_step")
    if (start is None) != (end is None):
        raise ApiError.invalid("If either start step or end step are specified, both must be specified.")
    steps = None
    if start is not None:
        steps = (int_field(start, "start_step"), int_field(end, "end_step"))
        if steps[0] > steps[1]:
            raise ApiError.invalid(
                f"end_step must be greater than start_step. Found start_step={steps[0]} and end_step={steps[1]}."
            )
    points = await _store(request).metric_history_sampled(run_ids, key, max_results, steps)
    return {"metrics": points} if points else {}


async def search_datasets(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    """MLflow's UI route: the datasets the experiments' runs used, with their context."""
    ids = _list(fields, "experiment_ids")
    if not ids:
        raise ApiError.invalid("SearchDatasets request must specify at least one experiment_id.")
    if len(ids) > MAX_DATASET_EXPERIMENTS:
        raise ApiError.invalid(
            f"SearchDatasets request cannot specify more than {MAX_DATASET_EXPERIMENTS} experiment_ids. "
            f"Received {len(ids)} experiment_ids."
        )
    summaries = await _store(request).search_datasets([int_field(i, "experiment_ids") for i in ids])
    return {"dataset_summaries": summaries} if summaries else {}


async def list_run_artifacts(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    run = await _store(request).get_run(_run_id(fields))
    return await request.app[LOCATIONS_KEY].list_run(run["info"]["artifact_uri"], str(fields.get("path") or ""))


# -- logged models -----------------------------------------------------------------------------


async def create_logged_model(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    checked = {
        **fields,
        "model_type": _text(fields, "model_type"),
        "tags": _objects(fields, "tags"),
        "params": _objects(fields, "params"),
    }
    return {"model": await _store(request).create_logged_model(checked)}


def _flag(fields: dict[str, Any], name: str) -> bool:
    """A boolean query parameter: true or false in any case (MLflow reads anything else as false)."""
    value = fields.get(name)
    if value is None:
        return False
    if not isinstance(value, str) or value.lower() not in ("true", "false"):
        raise ApiError.invalid(f"Invalid boolean value: {str(value)[:50]}, must be 'true' or 'false'.")
    return value.lower() == "true"


async def get_logged_model(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    model_id = request.match_info["model_id"]
    return {"model": await _store(request).get_logged_model(model_id, allow_deleted=_flag(fields, "allow_deleted"))}


async def finalize_logged_model(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    return {"model": await _store(request).finalize_logged_model(request.match_info["model_id"], fields.get("status"))}


async def delete_logged_model(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await _store(request).delete_logged_model(request.match_info["model_id"])
    return {}


async def set_logged_model_tags(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await _store(request).set_logged_model_tags(request.match_info["model_id"], _objects(fields, "tags"))
    return {}


async def delete_logged_model_tag(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await _store(request).delete_logged_model_tag(request.match_info["model_id"], request.match_info["tag_key"])
    return {}


async def log_logged_model_params(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await _store(request).log_logged_model_params(
        request.match_info["model_id"], _objects(fields, "params"), fields.get("model_id")
    )
    return {}


async def search_logged_models(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    """MLflow's defaults: 50 models without max_results, 100 with max_results 0. More than
    MAX_LOGGED_MODELS come in pages of that many (the client follows next_page_token)."""
    max_results = int_field(fields.get("max_results"), "max_results", default=DEFAULT_LOGGED_MODELS)
    found, token = await _store(request).search_logged_models(
        fields.get("experiment_ids"),
        _text(fields, "filter"),
        _objects(fields, "datasets"),
        max_results or ZERO_LOGGED_MODELS,
        _objects(fields, "order_by"),
        _text(fields, "page_token"),
    )
    return _with_token({"models": found} if found else {}, token)


ROUTES: list[tuple[str, str, Handler, Access]] = [
    ("POST", "/experiments/create", create_experiment, Access.WRITE),
    ("GET", "/experiments/get", get_experiment, Access.READ),
    ("GET", "/experiments/get-by-name", get_experiment_by_name, Access.READ),
    ("POST", "/experiments/search", search_experiments, Access.READ),
    ("GET", "/experiments/search", search_experiments, Access.READ),
    ("POST", "/experiments/update", update_experiment, Access.WRITE),
    ("POST", "/experiments/delete", delete_experiment, Access.WRITE),
    ("POST", "/experiments/restore", restore_experiment, Access.WRITE),
    ("POST", "/experiments/set-experiment-tag", set_experiment_tag, Access.WRITE),
    ("POST", "/experiments/delete-experiment-tag", delete_experiment_tag, Access.WRITE),
    ("POST", "/runs/create", create_run, Access.WRITE),
    ("GET", "/runs/get", get_run, Access.READ),
    ("POST", "/runs/update", update_run, Access.WRITE),
    ("POST", "/runs/delete", delete_run, Access.WRITE),
    ("POST", "/runs/restore", restore_run, Access.WRITE),
    ("POST", "/runs/log-metric", log_metric, Access.WRITE),
    ("POST", "/runs/log-parameter", log_parameter, Access.WRITE),
    ("POST", "/runs/set-tag", set_tag, Access.WRITE),
    ("POST", "/runs/delete-tag", delete_tag, Access.WRITE),
    ("POST", "/runs/log-batch", log_batch, Access.WRITE),
    ("POST", "/runs/log-inputs", log_inputs, Access.WRITE),
    ("POST", "/runs/outputs", log_outputs, Access.WRITE),
    ("POST", "/runs/search", search_runs, Access.READ),
    ("GET", "/metrics/get-history", get_metric_history, Access.READ),
    ("GET", "/metrics/get-history-bulk-interval", get_metric_history_bulk_interval, Access.READ),
    ("GET", "/artifacts/list", list_run_artifacts, Access.READ),
    ("POST", "/logged-models", create_logged_model, Access.WRITE),
    ("POST", "/logged-models/search", search_logged_models, Access.READ),
    ("GET", "/logged-models/{model_id}", get_logged_model, Access.READ),
    ("PATCH", "/logged-models/{model_id}", finalize_logged_model, Access.WRITE),
    ("DELETE", "/logged-models/{model_id}", delete_logged_model, Access.WRITE),
    ("POST", "/logged-models/{model_id}/params", log_logged_model_params, Access.WRITE),
    ("PATCH", "/logged-models/{model_id}/tags", set_logged_model_tags, Access.WRITE),
    ("DELETE", "/logged-models/{model_id}/tags/{tag_key}", delete_logged_model_tag, Access.WRITE),
]


AJAX_ROUTES: list[tuple[str, str, Handler, Access]] = [
    ("GET", "/metrics/get-history-bulk", get_metric_history_bulk, Access.READ),
    ("POST", "/experiments/search-datasets", search_datasets, Access.READ),
]
"""Routes MLflow serves only under /ajax-api/2.0/mlflow (for its web UI); scripts call them too."""


def add_routes(app: web.Application) -> None:
    add_json_routes(app, TRACKING_PREFIXES, ROUTES)
    ajax_prefix = next(prefix for prefix in TRACKING_PREFIXES if prefix.startswith("/ajax-api/"))
    add_json_routes(app, [ajax_prefix], AJAX_ROUTES)
