"""The OpenAPI descriptions of the tracking API's routes, and the component schemas of its objects
(experiments, runs, metrics, params, tags, logged models); see `gateway.http.openapi`."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi_schemas import (
    EMPTY_OK,
    INT64_LIKE,
    INTEGER,
    MODEL_ID,
    PAGE_TOKEN,
    RUN_ID_QUERY,
    STRING,
    Operation,
    Operations,
    Schema,
    array,
    error,
    json_body,
    json_ok,
    obj,
    op,
    query,
    ref,
)
from gateway.tracking.limits import (
    DEFAULT_LOGGED_MODELS,
    DEFAULT_SEARCH_RESULTS,
    MAX_BATCH_METRICS,
    MAX_BATCH_PARAMS,
    MAX_BATCH_TAGS,
    MAX_BATCH_TOTAL,
    MAX_BULK_RUNS,
    MAX_EXPERIMENT_TAG_VALUE,
    MAX_HISTORY,
    MAX_KEY,
    MAX_LOGGED_MODELS,
    MAX_MODEL_NAME,
    MAX_MODEL_PARAMS,
    MAX_PARAM_VALUE,
    MAX_SEARCH_RESULTS,
    MAX_TAG_VALUE,
    MODEL_STATUSES,
    RUN_STATUSES,
    ZERO_LOGGED_MODELS,
)

DECIMAL_ID: Schema = {
    "anyOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "integer", "minimum": 0}],
    "description": "a decimal id; MLflow sends a string, a JSON integer is accepted too",
}
KEY: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_KEY}
SEARCH_MAX_RESULTS: Schema = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_SEARCH_RESULTS,
    "default": DEFAULT_SEARCH_RESULTS,
}
LOGGED_MODELS_MAX_RESULTS: Schema = {
    "type": "integer",
    "minimum": 0,
    "default": DEFAULT_LOGGED_MODELS,
    "description": f"0 means {ZERO_LOGGED_MODELS}, as in MLflow; more than {MAX_LOGGED_MODELS} come "
    f"{MAX_LOGGED_MODELS} a page, with next_page_token",
}
TIMESTAMP_MS: Schema = {**INTEGER, "description": "milliseconds since the epoch"}
METRIC_VALUE: Schema = {
    "anyOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}],
    "description": "a number; protobuf's JSON strings for the non-finite values",
}
HISTORY_MAX_RESULTS: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_HISTORY, "default": MAX_HISTORY}
VIEW_TYPE: Schema = {
    "anyOf": [
        {"type": "string", "enum": ["ACTIVE_ONLY", "DELETED_ONLY", "ALL", "1", "2", "3"]},
        {"type": "integer", "enum": [1, 2, 3]},
    ],
    "default": "ACTIVE_ONLY",
    "description": "which lifecycle stages to search: a name, or MLflow's number for it (1, 2, 3)",
}
RUN_ID_FIELDS: dict[str, Schema] = {
    "run_id": {"type": "string", "minLength": 1, "description": "the run's id (run_uuid is accepted in its place)"},
    "run_uuid": {"type": "string", "minLength": 1, "description": "the run's id, MLflow's older field name"},
}
ONE_OF_RUN_ID: list[Schema] = [{"required": ["run_id"]}, {"required": ["run_uuid"]}]
"""Either name for the run's id must be there (the handlers take run_id, else run_uuid)."""


def key_value(value_limit: int) -> Schema:
    return obj({"key": KEY, "value": {"type": "string", "maxLength": value_limit}}, ("key",))


SCHEMAS: dict[str, Schema] = {
    "Tag": key_value(MAX_TAG_VALUE),
    "ExperimentTag": key_value(MAX_EXPERIMENT_TAG_VALUE),
    "Param": key_value(MAX_PARAM_VALUE),
    "Metric": obj(
        {
            "key": KEY,
            "value": METRIC_VALUE,
            "timestamp": INT64_LIKE,
            "step": INT64_LIKE,
            "model_id": STRING,
            "dataset_name": STRING,
            "dataset_digest": STRING,
        },
        ("key", "value", "timestamp"),
    ),
    "MetricPoint": obj({"key": STRING, "value": METRIC_VALUE, "timestamp": INTEGER, "step": INTEGER}),
    "Experiment": obj(
        {
            "experiment_id": STRING,
            "name": STRING,
            "artifact_location": STRING,
            "lifecycle_stage": STRING,
            "last_update_time": INTEGER,
            "creation_time": INTEGER,
            "tags": array(ref("ExperimentTag")),
        },
        ("experiment_id", "name"),
    ),
    "RunInfo": obj(
        {
            "run_id": STRING,
            "run_uuid": STRING,
            "experiment_id": STRING,
            "run_name": STRING,
            "user_id": STRING,
            "status": {"type": "string", "enum": list(RUN_STATUSES)},
            "start_time": INTEGER,
            "end_time": INTEGER,
            "artifact_uri": STRING,
            "lifecycle_stage": STRING,
        },
        ("run_id", "experiment_id", "status"),
    ),
    "Run": obj(
        {
            "info": ref("RunInfo"),
            "data": obj(
                {
                    "metrics": array(ref("MetricPoint")),
                    "params": array(ref("Param")),
                    "tags": array(ref("Tag")),
                }
            ),
            "inputs": obj(
                {"dataset_inputs": array({"type": "object"}), "model_inputs": array(obj({"model_id": STRING}))}
            ),
            "outputs": obj({"model_outputs": array(obj({"model_id": STRING, "step": INTEGER}))}),
        },
        ("info",),
    ),
    "LoggedModel": obj(
        {
            "info": obj(
                {
                    "model_id": STRING,
                    "experiment_id": STRING,
                    "name": STRING,
                    "artifact_uri": STRING,
                    "creation_timestamp_ms": INTEGER,
                    "last_updated_timestamp_ms": INTEGER,
                    "status": {"type": "string", "enum": list(MODEL_STATUSES)},
                    "lifecycle_stage": STRING,
                    "model_type": STRING,
                    "source_run_id": STRING,
                    "tags": array(ref("Tag")),
                },
                ("model_id", "experiment_id"),
            ),
            "data": obj({"params": array(ref("Param")), "metrics": array(ref("Metric"))}),
        },
        ("info",),
    ),
}
"""The component schemas of the tracking objects, in the document's order."""


def tracking_post(summary: str, body: Schema, ok: dict[str, Any], **fields: Any) -> Operation:
    return op(summary, ok, tag="tracking", requestBody=json_body(body), **fields)


def tracking_get(summary: str, parameters: list[Schema], ok: dict[str, Any], **fields: Any) -> Operation:
    return op(summary, ok, tag="tracking", parameters=parameters, **fields)


EXPERIMENT_SEARCH_FIELDS: dict[str, Schema] = {
    "view_type": VIEW_TYPE,
    "max_results": SEARCH_MAX_RESULTS,
    "filter": {
        **STRING,
        "description": "MLflow's experiment search syntax: comparisons joined by AND (OR is refused) on "
        "name (=, !=, LIKE, ILIKE), experiment_id (=, !=, IN, NOT IN against quoted ids), creation_time and "
        "last_update_time (=, !=, <, <=, >, >= against an integer), tags.<key> or tag.<key> (=, !=, LIKE, "
        "ILIKE, IS NULL, IS NOT NULL); an attribute may be written attribute.<name>. LIKE is case-sensitive, "
        "ILIKE is not",
    },
    "order_by": array(
        STRING,
        description="name, experiment_id, creation_time or last_update_time (optionally attribute.<key>), each "
        "with ASC (the default) or DESC; default creation_time DESC, experiment_id ASC (the newest first), and "
        "experiment_id DESC breaks ties when it is not named",
    ),
    "page_token": PAGE_TOKEN,
}
EXPERIMENT_SEARCH_OK = json_ok(obj({"experiments": array(ref("Experiment")), "next_page_token": STRING}))


def run_body(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    """A body naming a run (run_id or run_uuid) and the other fields."""
    return obj({**RUN_ID_FIELDS, **properties}, required, anyOf=ONE_OF_RUN_ID)


TRACKING: dict[tuple[str, str], Operation] = {
    ("POST", "/experiments/create"): tracking_post(
        "Create an experiment",
        obj(
            {
                "name": {"type": "string", "minLength": 1},
                "artifact_location": {
                    **STRING,
                    "description": "mlflow-artifacts:/<path>, or an s3://, wasbs:// or gs:// bucket location",
                },
                "tags": array(
                    ref("ExperimentTag"),
                    description="a JSON array of {key, value} (an object is refused, as by MLflow)",
                ),
            },
            ("name",),
        ),
        json_ok(obj({"experiment_id": STRING}, ("experiment_id",))),
    ),
    ("GET", "/experiments/get"): tracking_get(
        "Get an experiment by id",
        [query("experiment_id", {"type": "string", "pattern": "^[0-9]+$"}, required=True)],
        json_ok(obj({"experiment": ref("Experiment")}, ("experiment",))),
    ),
    ("GET", "/experiments/get-by-name"): tracking_get(
        "Get an experiment by name",
        [query("experiment_name", {"type": "string", "minLength": 1}, required=True)],
        json_ok(obj({"experiment": ref("Experiment")}, ("experiment",))),
    ),
    ("POST", "/experiments/search"): tracking_post(
        "Search experiments", obj(EXPERIMENT_SEARCH_FIELDS), EXPERIMENT_SEARCH_OK
    ),
    ("GET", "/experiments/search"): tracking_get(
        "Search experiments",
        [query(name, schema) for name, schema in EXPERIMENT_SEARCH_FIELDS.items()],
        EXPERIMENT_SEARCH_OK,
    ),
    ("POST", "/experiments/update"): tracking_post(
        "Rename an experiment",
        obj(
            {"experiment_id": DECIMAL_ID, "new_name": {"type": "string", "minLength": 1}}, ("experiment_id", "new_name")
        ),
        EMPTY_OK,
    ),
    ("POST", "/experiments/delete"): tracking_post(
        "Delete an experiment (and mark its runs deleted); the default experiment '0' too, as MLflow 3.17",
        obj({"experiment_id": DECIMAL_ID}, ("experiment_id",)),
        EMPTY_OK,
    ),
    ("POST", "/experiments/restore"): tracking_post(
        "Restore a deleted experiment", obj({"experiment_id": DECIMAL_ID}, ("experiment_id",)), EMPTY_OK
    ),
    ("POST", "/experiments/set-experiment-tag"): tracking_post(
        "Set a tag on an active experiment (a deleted one is a 400)",
        obj(
            {
                "experiment_id": DECIMAL_ID,
                "key": KEY,
                "value": {"type": "string", "maxLength": MAX_EXPERIMENT_TAG_VALUE},
            },
            ("experiment_id", "key"),
        ),
        EMPTY_OK,
    ),
    ("POST", "/experiments/delete-experiment-tag"): tracking_post(
        "Delete a tag of an active experiment (a deleted experiment is a 400, a missing tag a 404)",
        obj({"experiment_id": DECIMAL_ID, "key": KEY}, ("experiment_id", "key")),
        EMPTY_OK,
    ),
    ("POST", "/runs/create"): tracking_post(
        "Create a run",
        obj(
            {
                "experiment_id": DECIMAL_ID,
                "user_id": STRING,
                "start_time": {**INT64_LIKE, "description": "milliseconds since the epoch; default 0, as MLflow"},
                "run_name": STRING,
                "tags": array(ref("Tag")),
            },
            ("experiment_id",),
        ),
        json_ok(obj({"run": ref("Run")}, ("run",))),
    ),
    ("GET", "/runs/get"): tracking_get("Get a run", RUN_ID_QUERY, json_ok(obj({"run": ref("Run")}, ("run",)))),
    ("POST", "/runs/update"): tracking_post(
        "Update a run's status, end time or name",
        run_body(
            {"status": {"type": "string", "enum": list(RUN_STATUSES)}, "end_time": INT64_LIKE, "run_name": STRING}
        ),
        json_ok(obj({"run_info": ref("RunInfo")}, ("run_info",))),
    ),
    ("POST", "/runs/delete"): tracking_post("Delete a run", run_body({}), EMPTY_OK),
    ("POST", "/runs/restore"): tracking_post("Restore a deleted run", run_body({}), EMPTY_OK),
    ("POST", "/runs/log-metric"): tracking_post(
        "Log one metric value",
        run_body(
            {
                "key": KEY,
                "value": METRIC_VALUE,
                "timestamp": {**INT64_LIKE, "description": "milliseconds since the epoch"},
                "step": {**INT64_LIKE, "description": "default 0"},
                "model_id": STRING,
                "dataset_name": STRING,
                "dataset_digest": STRING,
            },
            ("key", "value", "timestamp"),
        ),
        EMPTY_OK,
    ),
    ("POST", "/runs/log-parameter"): tracking_post(
        "Log a parameter (a logged value cannot change)",
        run_body({"key": KEY, "value": {"type": "string", "maxLength": MAX_PARAM_VALUE}}, ("key",)),
        EMPTY_OK,
    ),
    ("POST", "/runs/set-tag"): tracking_post(
        "Set a tag on a run",
        run_body({"key": KEY, "value": {"type": "string", "maxLength": MAX_TAG_VALUE}}, ("key",)),
        EMPTY_OK,
    ),
    ("POST", "/runs/delete-tag"): tracking_post("Delete a run's tag", run_body({"key": KEY}, ("key",)), EMPTY_OK),
    ("POST", "/runs/log-batch"): tracking_post(
        f"Log metrics, params and tags at once (at most {MAX_BATCH_METRICS} metrics, {MAX_BATCH_PARAMS} params, "
        f"{MAX_BATCH_TAGS} tags, {MAX_BATCH_TOTAL} in all)",
        run_body(
            {
                "metrics": array(ref("Metric"), maxItems=MAX_BATCH_METRICS),
                "params": array(ref("Param"), maxItems=MAX_BATCH_PARAMS),
                "tags": array(ref("Tag"), maxItems=MAX_BATCH_TAGS),
            }
        ),
        EMPTY_OK,
    ),
    ("POST", "/runs/log-inputs"): tracking_post(
        "Log the datasets and logged models a run used (logging one again changes nothing)",
        run_body(
            {
                "datasets": array(
                    obj(
                        {
                            "tags": array(ref("Tag")),
                            "dataset": obj(
                                {
                                    "name": {"type": "string", "minLength": 1},
                                    "digest": {"type": "string", "minLength": 1},
                                    "source_type": STRING,
                                    "source": STRING,
                                    "schema": STRING,
                                    "profile": STRING,
                                },
                                ("name", "digest"),
                            ),
                        },
                        ("dataset",),
                    )
                ),
                "models": array(
                    obj({"model_id": {**STRING, "minLength": 1, "description": "a logged model that exists"}}),
                    description="shown as inputs.model_inputs of the run",
                ),
            }
        ),
        EMPTY_OK,
    ),
    ("POST", "/runs/outputs"): tracking_post(
        "Log the logged models a run produced",
        run_body(
            {"models": array(obj({"model_id": {"type": "string", "minLength": 1}, "step": INT64_LIKE}, ("model_id",)))}
        ),
        EMPTY_OK,
    ),
    ("POST", "/runs/search"): tracking_post(
        "Search runs",
        obj(
            {
                "experiment_ids": array(DECIMAL_ID),
                "filter": {
                    **STRING,
                    "description": "MLflow's search syntax (metrics., params., tags. or tag., attributes., "
                    "datasets.); LIKE is case-sensitive, ILIKE is not",
                },
                "run_view_type": VIEW_TYPE,
                "max_results": SEARCH_MAX_RESULTS,
                "order_by": array(STRING),
                "page_token": PAGE_TOKEN,
            }
        ),
        json_ok(obj({"runs": array(ref("Run")), "next_page_token": STRING})),
    ),
    ("GET", "/metrics/get-history-bulk"): tracking_get(
        f"MLflow's UI route (under /ajax-api only): one metric's history for up to {MAX_BULK_RUNS} runs",
        [
            {**query("run_id", array(STRING), f"1 to {MAX_BULK_RUNS} run ids", required=True), "explode": True},
            query("metric_key", KEY, required=True),
            query("max_results", HISTORY_MAX_RESULTS),
        ],
        json_ok(obj({"metrics": array({"type": "object"})}, ("metrics",))),
    ),
    ("GET", "/metrics/get-history-bulk-interval"): tracking_get(
        f"MLflow's UI chart route: one metric's history for up to {MAX_BULK_RUNS} runs, each sampled evenly "
        "(first and last points kept)",
        [
            {**query("run_ids", array(STRING), f"1 to {MAX_BULK_RUNS} run ids", required=True), "explode": True},
            query("metric_key", KEY, required=True),
            query("max_results", {"type": "integer", "minimum": 1, "maximum": 2500, "default": 2500}, "per run"),
            query("start_step", INT64_LIKE, "with end_step: only steps in [start_step, end_step]"),
            query("end_step", INT64_LIKE),
        ],
        json_ok(obj({"metrics": array({"type": "object"})})),
    ),
    ("POST", "/experiments/search-datasets"): tracking_post(
        "MLflow's UI route (under /ajax-api only): the datasets the experiments' runs used",
        obj({"experiment_ids": array(DECIMAL_ID, minItems=1, maxItems=20)}, ("experiment_ids",)),
        json_ok(obj({"dataset_summaries": array({"type": "object"})})),
    ),
    ("GET", "/metrics/get-history"): tracking_get(
        "A metric's history",
        [
            *RUN_ID_QUERY,
            query("metric_key", KEY, required=True),
            query("max_results", HISTORY_MAX_RESULTS),
            query("page_token", PAGE_TOKEN),
        ],
        json_ok(
            obj(
                {
                    "metrics": array(ref("MetricPoint")),
                    "next_page_token": STRING,
                }
            )
        ),
    ),
    ("GET", "/artifacts/list"): tracking_get(
        "One level of a run's artifacts, paths relative to the run",
        [*RUN_ID_QUERY, query("path", STRING, "a directory under the run's artifact root")],
        json_ok(obj({"root_uri": STRING, "files": array(ref("FileInfo"))}, ("root_uri",))),
        more_responses={"501": error("The run's artifacts are not stored by this server; read them directly")},
    ),
    ("POST", "/logged-models"): tracking_post(
        "Create a logged model (MLflow 3)",
        obj(
            {
                "experiment_id": DECIMAL_ID,
                "name": {
                    **STRING,
                    "maxLength": MAX_MODEL_NAME,
                    "description": "default: a generated name such as 'bold-owl-42'; none of / : . % \" '",
                },
                "model_type": STRING,
                "source_run_id": STRING,
                "tags": array(ref("Tag")),
                "params": array(ref("Param")),
            },
            ("experiment_id",),
        ),
        json_ok(obj({"model": ref("LoggedModel")}, ("model",))),
    ),
    ("POST", "/logged-models/search"): tracking_post(
        "Search the active logged models of experiments (newest first unless order_by says otherwise)",
        obj(
            {
                "experiment_ids": array(DECIMAL_ID),
                "filter": {
                    **STRING,
                    "description": "comparisons joined by AND: metrics.<key> (any linked point) with < <= > >= = !=; "
                    "params.<key>, tags.<key> and the attributes name, model_id, model_type, status, "
                    "source_run_id, experiment_id with = != LIKE ILIKE IN NOT IN; creation_time and "
                    "last_updated_timestamp (milliseconds) with < <= > >= = !=",
                },
                "datasets": array(
                    obj({"dataset_name": {**STRING, "minLength": 1}, "dataset_digest": STRING}, ("dataset_name",)),
                    description="only models with metrics on one of these datasets; metric filters look at those",
                ),
                "max_results": LOGGED_MODELS_MAX_RESULTS,
                "order_by": array(
                    obj(
                        {
                            "field_name": {
                                **STRING,
                                "minLength": 1,
                                "description": "an attribute (name, creation_time, ...) or metrics.<key> (its "
                                "latest value; models without it last)",
                            },
                            "ascending": {"type": "boolean", "default": True},
                            "dataset_name": {**STRING, "description": "metrics only: that dataset's points"},
                            "dataset_digest": {**STRING, "description": "metrics only: that dataset's points"},
                        },
                        ("field_name",),
                    )
                ),
                "page_token": PAGE_TOKEN,
            },
            ("experiment_ids",),
        ),
        json_ok(obj({"models": array(ref("LoggedModel")), "next_page_token": STRING})),
    ),
    ("GET", "/logged-models/{model_id}"): tracking_get(
        "Get a logged model",
        [
            MODEL_ID,
            query(
                "allow_deleted",
                {"type": "boolean", "default": False},
                "true (any case): a deleted model too; by default a deleted model is not found",
            ),
        ],
        json_ok(obj({"model": ref("LoggedModel")}, ("model",))),
    ),
    ("POST", "/logged-models/{model_id}/params"): op(
        f"Log params to a logged model (at most {MAX_MODEL_PARAMS}; the same value again is fine, another is refused)",
        EMPTY_OK,
        tag="tracking",
        parameters=[MODEL_ID],
        requestBody=json_body(
            obj(
                {
                    "model_id": {**STRING, "description": "optional; when given, the path's model id"},
                    "params": array(ref("Param"), maxItems=MAX_MODEL_PARAMS),
                }
            )
        ),
    ),
    ("PATCH", "/logged-models/{model_id}"): op(
        "Finalize a logged model: set its status",
        json_ok(obj({"model": ref("LoggedModel")}, ("model",))),
        tag="tracking",
        parameters=[MODEL_ID],
        requestBody=json_body(
            obj({"model_id": STRING, "status": {"type": "string", "enum": list(MODEL_STATUSES)}}, ("status",))
        ),
    ),
    ("DELETE", "/logged-models/{model_id}"): op(
        "Delete a logged model", EMPTY_OK, tag="tracking", parameters=[MODEL_ID]
    ),
    ("PATCH", "/logged-models/{model_id}/tags"): op(
        "Set tags on a logged model",
        EMPTY_OK,
        tag="tracking",
        parameters=[MODEL_ID],
        requestBody=json_body(obj({"tags": array(ref("Tag"))})),
    ),
    ("DELETE", "/logged-models/{model_id}/tags/{tag_key}"): op(
        "Delete a logged model's tag",
        EMPTY_OK,
        tag="tracking",
        parameters=[MODEL_ID, {"name": "tag_key", "in": "path", "required": True, "schema": KEY}],
    ),
}

# Keyed by (API family, METHOD, path below the family's prefix).
OPERATIONS: Operations = {("tracking", method, path): operation for (method, path), operation in TRACKING.items()}
