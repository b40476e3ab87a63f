"""The gateway's own OpenAPI 3 document, built from the live route table and served at `/openapi.json`.

The list of paths and methods is never written by hand: it is read from `app[ROUTE_ACCESS_KEY]`,
the table every route is added to (`gateway.http.access.add_route`), so the document describes exactly
the routes this server's mode serves, and a new route shows up in it at once. What is written here
is each operation's description: its parameters, request body and responses, keyed by method and
path below the API prefix (both `/api/...` and `/ajax-api/...` share one description). A route
without a description still appears, marked `x-undocumented`, and `tests/http/test_openapi.py` fails on
it. Request schemas follow what the handlers accept (field names, JSON types, which are required);
response schemas are deliberately loose: the fields MLflow's clients read, extra fields allowed.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from gateway import __version__
from gateway.artifacts import api as artifacts_api
from gateway.artifacts import archive, archive_api
from gateway.artifacts.multipart_api import MAX_PARTS
from gateway.http.access import ROUTE_ACCESS_KEY, Access, add_route
from gateway.http.prefixes import ADMIN_PREFIX, ARTIFACTS_PREFIXES, TRACKING_PREFIXES
from gateway.tracking.limits import (
    DEFAULT_LOGGED_MODELS,
    DEFAULT_SEARCH_RESULTS,
    MAX_BATCH_METRICS,
    MAX_BATCH_PARAMS,
    MAX_BATCH_TAGS,
    MAX_BATCH_TOTAL,
    MAX_BULK_RUNS,
    MAX_HISTORY,
    MAX_KEY,
    MAX_LOGGED_MODELS,
    MAX_PARAM_VALUE,
    MAX_SEARCH_RESULTS,
    MAX_TAG_VALUE,
    MODEL_STATUSES,
    RUN_STATUSES,
)

OPENAPI_PATH = "/openapi.json"
SERVER_INFO_PREFIXES = ("/api/3.0/mlflow", "/ajax-api/3.0/mlflow")
ANY_METHOD = ("get", "put", "post", "patch", "delete", "head")
"""The methods a `*` route (a disabled mode's catch-all) is documented with."""

Schema = dict[str, Any]
Operation = dict[str, Any]

# -- schema building blocks ---------------------------------------------------------------------

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer", "format": "int64"}
DECIMAL_ID: Schema = {
    "anyOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "integer", "minimum": 0}],
    "description": "a decimal id; MLflow sends a string, a JSON integer is accepted too",
}
INT64_LIKE: Schema = {
    "anyOf": [INTEGER, {"type": "string", "pattern": "^-?[0-9]+$"}],
    "description": "a 64-bit integer, or a string holding one",
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
    "minimum": 1,
    "maximum": MAX_LOGGED_MODELS,
    "default": DEFAULT_LOGGED_MODELS,
}
TIMESTAMP_MS: Schema = {**INTEGER, "description": "milliseconds since the epoch"}
METRIC_VALUE: Schema = {
    "anyOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}],
    "description": "a number; protobuf's JSON strings for the non-finite values",
}
PAGE_TOKEN: Schema = {**STRING, "description": "the next_page_token of the previous page"}
HISTORY_MAX_RESULTS: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_HISTORY, "default": MAX_HISTORY}
VIEW_TYPE: Schema = {"type": "string", "enum": ["ACTIVE_ONLY", "DELETED_ONLY", "ALL"]}
RUN_ID_FIELDS: dict[str, Schema] = {
    "run_id": {"type": "string", "minLength": 1, "description": "the run's id (run_uuid is accepted in its place)"},
    "run_uuid": {"type": "string", "minLength": 1, "description": "the run's id, MLflow's older field name"},
}
ONE_OF_RUN_ID: list[Schema] = [{"required": ["run_id"]}, {"required": ["run_uuid"]}]
"""Either name for the run's id must be there (the handlers take run_id, else run_uuid)."""


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def obj(properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    schema: Schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    return schema


def key_value(value_limit: int) -> Schema:
    return obj({"key": KEY, "value": {"type": "string", "maxLength": value_limit}}, ("key",))


COMPONENT_SCHEMAS: dict[str, Schema] = {
    "Error": obj(
        {"error_code": {**STRING, "example": "INVALID_PARAMETER_VALUE"}, "message": STRING},
        ("error_code", "message"),
        description="Every error the gateway answers, MLflow's shape",
    ),
    "Tag": key_value(MAX_TAG_VALUE),
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
        ("key", "value"),
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
            "tags": array(ref("Tag")),
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
            "inputs": obj({"dataset_inputs": array({"type": "object"})}),
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
                    "status": {"type": "string", "enum": list(MODEL_STATUSES)},
                    "tags": array(ref("Tag")),
                },
                ("model_id", "experiment_id"),
            ),
            "data": obj({"params": array(ref("Param"))}),
        },
        ("info",),
    ),
    "FileInfo": obj(
        {"path": STRING, "is_dir": {"type": "boolean"}, "file_size": {"type": "integer", "minimum": 0}},
        ("path", "is_dir"),
    ),
    "Empty": {"type": "object", "description": "`{}`: the call succeeded and has nothing to return"},
}

SECURITY_SCHEMES: dict[str, Schema] = {
    "basicAuth": {"type": "http", "scheme": "basic", "description": "MLFLOW_TRACKING_USERNAME / _PASSWORD"},
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "MLFLOW_TRACKING_TOKEN"},
    "partToken": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "The gateway-signed, expiring grant in a part URL that mpu/create handed out",
    },
}
CREDENTIALS: list[dict[str, list[str]]] = [{"basicAuth": []}, {"bearerAuth": []}]

# -- responses ----------------------------------------------------------------------------------

ERROR = {"application/json": {"schema": ref("Error")}}


def json_ok(schema: Schema, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error(description: str, **headers: Schema) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": ERROR}
    if headers:
        response["headers"] = {name.replace("_", "-"): {"schema": schema} for name, schema in headers.items()}
    return response


CLIENT_ERROR = error(
    "The request was refused (invalid input 400, unknown object 404, no such method 405, too large 413, ...)"
)
STORAGE_ERRORS: dict[str, Any] = {
    "502": error("The storage backend failed; the message carries its words"),
    "503": error("Too many uploads at once on this worker; retry after Retry-After", Retry_After=INTEGER),
    "507": error("The storage is full"),
}


def responses(ok: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    return {"200": ok, **more, "4XX": CLIENT_ERROR}


# -- operations ---------------------------------------------------------------------------------


def query(name: str, schema: Schema, description: str = "", *, required: bool = False) -> Schema:
    parameter: Schema = {"name": name, "in": "query", "required": required, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


def header(name: str, description: str) -> Schema:
    return {"name": name, "in": "header", "required": False, "schema": STRING, "description": description}


def json_body(schema: Schema, *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def op(summary: str, ok: dict[str, Any], *, tag: str, **fields: Any) -> Operation:
    operation: Operation = {"summary": summary, "tags": [tag]}
    extra_responses = fields.pop("more_responses", {})
    operation.update(fields)
    operation["responses"] = responses(ok, extra_responses)
    return operation


def tracking_post(summary: str, body: Schema, ok: dict[str, Any], **fields: Any) -> Operation:
    return op(summary, ok, tag="tracking", requestBody=json_body(body), **fields)


def tracking_get(summary: str, parameters: list[Schema], ok: dict[str, Any], **fields: Any) -> Operation:
    return op(summary, ok, tag="tracking", parameters=parameters, **fields)


EMPTY_OK = json_ok(ref("Empty"))
RUN_ID_QUERY = [
    query("run_id", {"type": "string", "minLength": 1}, "the run's id (one of run_id and run_uuid is needed)"),
    query("run_uuid", {"type": "string", "minLength": 1}, "the run's id, MLflow's older parameter name"),
]
EXPERIMENT_SEARCH_FIELDS: dict[str, Schema] = {
    "view_type": VIEW_TYPE,
    "max_results": SEARCH_MAX_RESULTS,
    "filter": {**STRING, "description": "name and tags.<key> comparisons joined by AND"},
    "page_token": PAGE_TOKEN,
}
EXPERIMENT_SEARCH_OK = json_ok(obj({"experiments": array(ref("Experiment")), "next_page_token": STRING}))
MODEL_ID = {"name": "model_id", "in": "path", "required": True, "schema": STRING}


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
                "tags": array(ref("Tag")),
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
        "Delete an experiment (and mark its runs deleted)",
        obj({"experiment_id": DECIMAL_ID}, ("experiment_id",)),
        EMPTY_OK,
    ),
    ("POST", "/experiments/restore"): tracking_post(
        "Restore a deleted experiment", obj({"experiment_id": DECIMAL_ID}, ("experiment_id",)), EMPTY_OK
    ),
    ("POST", "/experiments/set-experiment-tag"): tracking_post(
        "Set a tag on an experiment",
        obj(
            {"experiment_id": DECIMAL_ID, "key": KEY, "value": {"type": "string", "maxLength": MAX_TAG_VALUE}},
            ("experiment_id", "key"),
        ),
        EMPTY_OK,
    ),
    ("POST", "/runs/create"): tracking_post(
        "Create a run",
        obj(
            {
                "experiment_id": {**DECIMAL_ID, "description": "default: the default experiment '0'"},
                "user_id": STRING,
                "start_time": {**INT64_LIKE, "description": "milliseconds since the epoch; default now"},
                "run_name": STRING,
                "tags": array(ref("Tag")),
            }
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
                "timestamp": {**INT64_LIKE, "description": "milliseconds since the epoch; default now"},
                "step": {**INT64_LIKE, "description": "default 0"},
                "model_id": STRING,
                "dataset_name": STRING,
                "dataset_digest": STRING,
            },
            ("key", "value"),
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
        "Log the datasets a run used",
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
                )
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
                "filter": {**STRING, "description": "MLflow's search syntax (metrics., params., tags., attributes.)"},
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
                "name": {**STRING, "description": "default 'model'"},
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
        "Search logged models",
        obj(
            {
                "experiment_ids": array(DECIMAL_ID),
                "filter": {**STRING, "description": "name, source_run_id, model_id or status = '...' joined by AND"},
                "max_results": LOGGED_MODELS_MAX_RESULTS,
                "page_token": PAGE_TOKEN,
            }
        ),
        json_ok(obj({"models": array(ref("LoggedModel")), "next_page_token": STRING})),
    ),
    ("GET", "/logged-models/{model_id}"): tracking_get(
        "Get a logged model", [MODEL_ID], json_ok(obj({"model": ref("LoggedModel")}, ("model",)))
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

# Artifact routes: the `{path}` parameter is the rest of the URL, percent-decoded once by the gateway.
ARTIFACT_PATH = {
    "name": "path",
    "in": "path",
    "required": True,
    "schema": STRING,
    "description": "a destination-relative path; '/' separates segments, percent-decoded exactly once",
}
DIRECTORY_PATH = {**ARTIFACT_PATH, "description": "the directory the file is uploaded to (may be empty)"}
DOWNLOAD_HEADERS = [
    header("Range", "one byte range, e.g. bytes=0-1023"),
    header("If-Range", "an ETag or HTTP date"),
    header("If-Match", "ETags"),
    header("If-None-Match", "ETags"),
    header("If-Modified-Since", "an HTTP date"),
    header("If-Unmodified-Since", "an HTTP date"),
]
DOWNLOAD_RESPONSE_HEADERS = {
    "ETag": {"schema": STRING},
    "Content-Disposition": {"schema": STRING},
    "Repr-Digest": {"schema": STRING, "description": "sha-256=:<base64>: when known"},
}
CONDITIONAL_RESPONSES: dict[str, Any] = {
    "206": {"description": "The requested range", "content": {"*/*": {"schema": {}}}},
    "304": {"description": "Not modified (If-None-Match, If-Modified-Since)"},
    "412": {"description": "A precondition failed (If-Match, If-Unmodified-Since)"},
    "416": {"description": "The range cannot be satisfied", "headers": {"Content-Range": {"schema": STRING}}},
}
MULTIPART_OFF = {"501": error("Multipart upload is off on this server (--multipart-upload off)")}

ARTIFACTS: dict[tuple[str, str], Operation] = {
    ("PUT", "/artifacts/{path}"): op(
        "Upload a file: the raw body is streamed to storage and appears atomically",
        json_ok(
            obj(
                {"path": STRING, "file_size": {"type": "integer"}, "sha256": {"type": "string", "nullable": True}},
                ("path", "file_size"),
            )
        ),
        tag="artifacts",
        parameters=[
            ARTIFACT_PATH,
            header("Content-MD5", "base64 MD5 of the body; a mismatch is 400 and nothing is stored"),
            header("Repr-Digest", "sha-256=:<base64>: of the body (RFC 9530); a mismatch is 400"),
            header(
                "Want-Repr-Digest",
                "sha-256=1 asks for the digest in this answer where it is not computed by default: S3 multipart"
                " objects, and bodies over 1 MiB on local disk (hashed just after the answer, then on GET and HEAD)",
            ),
        ],
        requestBody={
            "required": False,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "description": "the file's bytes, whatever the Content-Type",
        },
        more_responses={**STORAGE_ERRORS},
    ),
    ("GET", "/artifacts/{path}"): op(
        "Download a file (Range and conditional requests honoured)",
        {
            "description": "The file; Content-Type from the name",
            "content": {"*/*": {"schema": {}}},
            "headers": DOWNLOAD_RESPONSE_HEADERS,
        },
        tag="artifacts",
        parameters=[ARTIFACT_PATH, *DOWNLOAD_HEADERS],
        more_responses={
            **CONDITIONAL_RESPONSES,
            "307": {"description": "With --artifacts-redirect: a presigned storage URL in Location"},
            "502": STORAGE_ERRORS["502"],
        },
    ),
    ("HEAD", "/artifacts/{path}"): op(
        "A file's download headers, no body",
        {"description": "The headers a GET would have", "headers": DOWNLOAD_RESPONSE_HEADERS},
        tag="artifacts",
        parameters=[ARTIFACT_PATH, *DOWNLOAD_HEADERS],
        more_responses={**CONDITIONAL_RESPONSES, "502": {"description": "The storage backend failed"}},
    ),
    ("DELETE", "/artifacts/{path}"): op(
        "Delete a file or a whole directory (deleting nothing is fine; the root is refused)",
        EMPTY_OK,
        tag="artifacts",
        parameters=[ARTIFACT_PATH],
        more_responses={"502": STORAGE_ERRORS["502"]},
    ),
    ("GET", "/artifacts"): op(
        "List one level of a directory",
        json_ok(obj({"files": array(ref("FileInfo")), "next_page_token": STRING})),
        tag="artifacts",
        parameters=[
            query("path", STRING, "the directory (default: the root)"),
            query(
                "max_results",
                {"type": "integer", "minimum": 1, "maximum": artifacts_api.MAX_PAGE_SIZE},
                "page the listing (unpaged when absent)",
            ),
            query("page_token", PAGE_TOKEN),
        ],
        more_responses={"502": STORAGE_ERRORS["502"]},
    ),
    ("POST", "/mpu/create/{path}"): op(
        "Start a multipart upload of <path>/<basename of body.path>; returns part URLs",
        json_ok(
            obj(
                {
                    "upload_id": STRING,
                    "credentials": array(
                        obj(
                            {"url": STRING, "part_number": {"type": "integer"}, "headers": {"type": "object"}},
                            ("url", "part_number"),
                        )
                    ),
                },
                ("upload_id", "credentials"),
            )
        ),
        tag="multipart",
        parameters=[DIRECTORY_PATH],
        requestBody=json_body(
            obj(
                {
                    "path": {"type": "string", "minLength": 1, "description": "the client's local file path"},
                    "num_parts": {"type": "integer", "minimum": 0, "maximum": MAX_PARTS, "default": 0},
                },
                ("path",),
            )
        ),
        more_responses={**MULTIPART_OFF, "502": STORAGE_ERRORS["502"]},
    ),
    ("POST", "/mpu/complete/{path}"): op(
        "Complete a multipart upload from its parts' ETags",
        EMPTY_OK,
        tag="multipart",
        parameters=[DIRECTORY_PATH],
        requestBody=json_body(
            obj(
                {
                    "path": {"type": "string", "minLength": 1},
                    "upload_id": {"type": "string", "minLength": 1},
                    "parts": array(
                        obj(
                            {"part_number": {"type": "integer"}, "etag": STRING, "url": STRING},
                            ("part_number", "etag"),
                        ),
                        minItems=1,
                    ),
                },
                ("path", "upload_id", "parts"),
            )
        ),
        more_responses={**MULTIPART_OFF, **STORAGE_ERRORS},
    ),
    ("POST", "/mpu/abort/{path}"): op(
        "Abort a multipart upload (idempotent)",
        EMPTY_OK,
        tag="multipart",
        parameters=[DIRECTORY_PATH],
        requestBody=json_body(
            obj(
                {"path": {"type": "string", "minLength": 1}, "upload_id": {"type": "string", "minLength": 1}},
                ("path", "upload_id"),
            )
        ),
        more_responses={**MULTIPART_OFF, "502": STORAGE_ERRORS["502"]},
    ),
    ("PUT", "/mpu/part"): op(
        "Upload one part to a gateway part URL; the signed token in the URL is the credential",
        {
            **json_ok(obj({"part_number": {"type": "integer"}, "etag": STRING}, ("part_number", "etag"))),
            "headers": {"ETag": {"schema": STRING}},
        },
        tag="multipart",
        requestBody={
            "required": False,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
        more_responses={**MULTIPART_OFF, **STORAGE_ERRORS},
    ),
    ("GET", "/presigned/{path}"): op(
        "A presigned storage URL for downloading a file in ranges (MLflow's multipart download)",
        json_ok(
            obj(
                {"url": STRING, "headers": {"type": "object"}, "file_size": {"type": "integer"}},
                ("url", "file_size"),
            )
        ),
        tag="artifacts",
        parameters=[ARTIFACT_PATH],
        more_responses={
            "501": error("Presigned downloads are off, or the destination cannot presign (local disk)"),
            "502": STORAGE_ERRORS["502"],
        },
    ),
}

ARCHIVE_OK = {
    "description": "The folder as one archive, streamed (chunked, no Content-Length); entries under a top "
    "directory named after the folder. A storage failure mid-way closes the connection, leaving an archive "
    "without its end that extractors reject.",
    "content": {
        archive.FORMATS[name].content_type: {"schema": {"type": "string", "format": "binary"}}
        for name in archive.FORMATS
    },
    "headers": {"Content-Disposition": {"schema": STRING, "description": "attachment; filename=<folder>.<format>"}},
}
ARCHIVE_FORMAT = query(
    "format",
    {"type": "string", "enum": list(archive.FORMATS), "default": archive_api.DEFAULT_FORMAT},
    "zip (entries stored, ZIP64 where needed) or tar.gz (PAX headers, gzip)",
)


def archive_op(summary: str, parameters: list[Schema]) -> Operation:
    return op(
        summary,
        ARCHIVE_OK,
        tag="artifacts",
        parameters=[*parameters, ARCHIVE_FORMAT],
        more_responses={"502": STORAGE_ERRORS["502"]},
    )


ARTIFACTS.update(
    {
        ("GET", "/archive"): archive_op(f"Download the whole artifact root as {archive.ROOT_NAME}.zip or .tar.gz", []),
        ("GET", "/archive/{path}"): archive_op(
            "Download a folder as one zip or tar.gz archive (404 when it does not exist or is empty, 400 for a file)",
            [{**ARTIFACT_PATH, "description": "the folder, percent-decoded once; empty or '/'-ended is fine"}],
        ),
    }
)

RUN_ARTIFACT = op(
    "The MLflow UI's download of one file of a run (Range and conditional requests honoured)",
    {
        "description": "The file as an attachment; Content-Type from the name, as MLflow guesses it",
        "content": {"*/*": {"schema": {}}},
        "headers": DOWNLOAD_RESPONSE_HEADERS,
    },
    tag="tracking",
    parameters=[
        *RUN_ID_QUERY,
        query("path", {"type": "string", "minLength": 1}, "the file's path inside the run's artifacts", required=True),
        *DOWNLOAD_HEADERS,
    ],
    more_responses={
        **CONDITIONAL_RESPONSES,
        "501": error("The run's artifacts are not stored by this server (a bucket, or --no-serve-artifacts)"),
        "502": STORAGE_ERRORS["502"],
    },
)

LOGGED_MODEL_FILE = {
    **RUN_ARTIFACT,
    "summary": "MLflow's UI route (under /ajax-api only): one file of a logged model, as an attachment",
    "parameters": [
        MODEL_ID,
        query("artifact_file_path", {"type": "string", "minLength": 1}, "the file inside the model", required=True),
        *DOWNLOAD_HEADERS,
    ],
}
UPLOAD_ARTIFACT = op(
    "MLflow's UI route (under /ajax-api only): upload one small file (at most 10 MiB) into a run",
    EMPTY_OK,
    tag="tracking",
    parameters=[
        query("run_uuid", {"type": "string", "minLength": 1}, required=True),
        query("path", {"type": "string", "minLength": 1}, "the file's path inside the run's artifacts", required=True),
    ],
    requestBody={
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    more_responses={
        "501": error("The run's artifacts are not stored by this server (a bucket, or --no-serve-artifacts)"),
        **STORAGE_ERRORS,
    },
)

TEXT_OK = {"description": "OK", "content": {"text/plain": {"schema": STRING}}}
SERVER_INFO_OK = json_ok(
    obj(
        {
            "store_type": STRING,
            "multipart_uploads_enabled": {"type": "boolean"},
            "multipart_downloads_enabled": {"type": "boolean"},
            "artifact_gateway": obj({"version": STRING, "mode": STRING}),
        },
        ("multipart_uploads_enabled", "multipart_downloads_enabled"),
    )
)
READY_OK = json_ok(
    obj(
        {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "database": STRING,
            "auth_database": STRING,
            "artifacts": STRING,
        }
    )
)
READY_503 = {**READY_OK, "description": "A dependency does not answer; the body says which"}


def meta(summary: str, ok: dict[str, Any], more: dict[str, Any] | None = None) -> Operation:
    return op(summary, ok, tag="server", more_responses=more or {})


def head_of(operation: Operation) -> Operation:
    """The HEAD twin of a GET: the same responses without bodies."""
    head = {key: value for key, value in operation.items() if key != "responses"}
    head["summary"] = f"{operation['summary']} (headers only)"
    head["responses"] = {code: {"description": value["description"]} for code, value in operation["responses"].items()}
    return head


META: dict[tuple[str, str], Operation] = {
    ("GET", "/health"): meta("Liveness: OK while the process serves", TEXT_OK),
    ("GET", "/health/ready"): meta(
        "Readiness: the metadata database (artifacts-only with --auth: the users' database) and the artifact "
        "destination answer",
        READY_OK,
        {"503": READY_503},
    ),
    ("GET", "/version"): meta("The gateway's version", TEXT_OK),
    ("GET", "/server-info"): meta("MLflow's capability probe", SERVER_INFO_OK),
    ("GET", OPENAPI_PATH): meta("This document", json_ok({"type": "object"})),
    ("GET", "/metrics"): meta(
        "Prometheus metrics in the text exposition format, summed over every worker",
        {"description": "OK", "content": {"text/plain": {"schema": STRING}}},
    ),
    ("GET", f"{ADMIN_PREFIX}/users"): meta(
        "With --auth, for admins: the users and tokens that may call this server (never a secret)",
        json_ok(
            obj(
                {
                    "users": array(obj({"username": STRING, "permission": STRING, "creation_time": INT64_LIKE})),
                    "tokens": array(
                        obj(
                            {
                                "token_id": STRING,
                                "username": STRING,
                                "name": STRING,
                                "permission": STRING,
                                "creation_time": INT64_LIKE,
                                "expiry_time": {**INT64_LIKE, "nullable": True},
                            }
                        )
                    ),
                },
                ("users", "tokens"),
            )
        ),
    ),
}
META.update(
    {
        ("HEAD", path): head_of(operation)
        for (method, path), operation in list(META.items())
        if path in ("/health", "/health/ready", "/version", "/server-info")
    }
)


# -- the web UI: HTML pages (their errors are HTML pages too) -------------------------------------

HTML = {"text/html": {"schema": STRING}}
HTML_OK = {"description": "The page", "content": HTML}
HTML_ERRORS: dict[str, Any] = {
    "4XX": {
        "description": "A page that says what is wrong (bad filter, unknown id, invalid path, ...)",
        "content": HTML,
    }
}
REDIRECT_BODY = {"text/plain": {"schema": STRING}}
SEE_OTHER = {"303": {"description": "Done; the Location header names the page to show", "content": REDIRECT_BODY}}
EXPERIMENT_ID = {"name": "experiment_id", "in": "path", "required": True, "schema": STRING}
RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": STRING}
PAGE = query("page", STRING, "1-based page number")
VIEW = query("view", {"type": "string", "enum": ["active", "deleted", "all"]})
UI_ARTIFACT_PAGES = {"501": {"description": "This server does not store these artifacts", "content": HTML}}


def page(summary: str, parameters: list[Schema], **more: Any) -> Operation:
    return {
        "summary": summary,
        "tags": ["ui"],
        "parameters": parameters,
        "responses": {"200": HTML_OK, **more, **HTML_ERRORS},
    }


def form(summary: str, parameters: list[Schema], fields: dict[str, Schema]) -> Operation:
    body = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": obj(fields)}}}
    return {
        "summary": summary + " (a form post from the UI; refused when sent from another site)",
        "tags": ["ui"],
        "parameters": parameters,
        "requestBody": body,
        "responses": {**SEE_OTHER, **HTML_ERRORS},
    }


RUNS_PAGE = page(
    "An experiment's runs as a table: MLflow filter, sort, chosen columns, pages",
    [
        EXPERIMENT_ID,
        query("filter", STRING, "MLflow's search filter, e.g. metrics.loss < 0.2 and params.lr = '0.01'"),
        query("order_by", STRING, "one MLflow order_by clause, e.g. metrics.`loss` ASC"),
        {**query("columns", array(STRING), "metrics.<key>, params.<key> or tags.<key>"), "explode": True},
        query("max_results", STRING, "runs per page, 1 to 1000 (100)"),
        VIEW,
        PAGE,
    ],
)
AFTER = query("after", STRING, "continue a long folder after this entry")
RAW = query("raw", STRING, "a file's bytes instead of its page (the image preview; never a redirect)")
RUN_ARTIFACTS_PAGE = page(
    "A run's artifacts: the folder tree, a folder's entries, a file's size, digest and preview",
    [EXPERIMENT_ID, RUN_ID, AFTER, RAW],
    **UI_ARTIFACT_PAGES,
)
BROWSE_PAGE = page(
    "The artifact destination: the folder tree, a folder's entries, a file's size, digest and preview",
    [AFTER, RAW],
)
UI: dict[tuple[str, str], Operation] = {
    ("GET", "/"): page("The start page: experiments (the artifact browser with --artifacts-only)", []),
    ("GET", "/experiments"): page(
        "Experiments, searched by name", [query("q", STRING, "part of the name, any case"), VIEW, PAGE]
    ),
    ("POST", "/experiments"): form("Create an experiment", [], {"name": STRING}),
    ("GET", "/experiments/{experiment_id}"): RUNS_PAGE,
    ("POST", "/experiments/{experiment_id}/rename"): form(
        "Rename an experiment", [EXPERIMENT_ID], {"new_name": STRING}
    ),
    ("POST", "/experiments/{experiment_id}/delete"): form("Delete an experiment (restorable)", [EXPERIMENT_ID], {}),
    ("POST", "/experiments/{experiment_id}/restore"): form("Restore a deleted experiment", [EXPERIMENT_ID], {}),
    ("GET", "/experiments/{experiment_id}/runs/{run_id}"): page(
        "One run: params, latest metrics, metric charts over step and time, tags, inputs, logged models",
        [EXPERIMENT_ID, RUN_ID],
        **{"302": {"description": "The run is in another experiment: its own page", "content": REDIRECT_BODY}},
    ),
    ("GET", "/experiments/{experiment_id}/runs/{run_id}/artifacts"): RUN_ARTIFACTS_PAGE,
    ("GET", "/experiments/{experiment_id}/runs/{run_id}/artifacts/{path}"): {
        **RUN_ARTIFACTS_PAGE,
        "parameters": [*RUN_ARTIFACTS_PAGE["parameters"], ARTIFACT_PATH],
    },
    ("GET", "/compare-runs"): page(
        "2 to 10 runs side by side: parameter differences, latest metrics, overlaid metric curves",
        [
            {**query("runs", array(STRING), "run ids", required=True), "explode": True},
            query("only_differences", {"type": "string", "enum": ["0", "1"]}),
        ],
    ),
    ("GET", "/browse"): BROWSE_PAGE,
    ("GET", "/browse/{path}"): {**BROWSE_PAGE, "parameters": [*BROWSE_PAGE["parameters"], ARTIFACT_PATH]},
    ("GET", "/ui-static/{name}"): {
        "summary": "The UI's own scripts and styles (uPlot, MIT licence, vendored)",
        "tags": ["ui"],
        "parameters": [{"name": "name", "in": "path", "required": True, "schema": STRING}],
        "responses": {"200": {"description": "The file", "content": {"*/*": {"schema": STRING}}}, "4XX": CLIENT_ERROR},
    },
}


def disabled(api: str) -> Operation:
    return {
        "summary": f"The {api} API is disabled in this server's mode",
        "tags": [api],
        "parameters": [{**ARTIFACT_PATH, "description": "any route of the disabled API"}],
        "responses": {"501": error("Disabled in this mode; the message names the flag"), "4XX": CLIENT_ERROR},
    }


# Keyed by (API family, METHOD, path below the family's prefix).
OPERATIONS: dict[tuple[str, str, str], Operation] = {
    **{("tracking", method, path): operation for (method, path), operation in TRACKING.items()},
    **{("artifacts", method, path): operation for (method, path), operation in ARTIFACTS.items()},
    **{
        ("server-info", method, path): operation for (method, path), operation in META.items() if path == "/server-info"
    },
    **{("", method, path): operation for (method, path), operation in META.items() if path != "/server-info"},
    **{("", method, path): operation for (method, path), operation in UI.items()},
    ("", "GET", "/get-artifact"): RUN_ARTIFACT,  # a literal: gateway.artifacts.run_artifacts loads the database stack
    ("tracking", "GET", "/logged-models/{model_id}/artifacts/files"): LOGGED_MODEL_FILE,
    ("tracking", "POST", "/upload-artifact"): UPLOAD_ARTIFACT,
    ("tracking", "*", "/{path}"): disabled("tracking"),
    ("artifacts", "*", "/{path}"): disabled("artifacts"),
}

FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tracking", TRACKING_PREFIXES),
    ("artifacts", ARTIFACTS_PREFIXES),
    ("server-info", SERVER_INFO_PREFIXES),
)


def split_path(path: str) -> tuple[str, str]:
    """(API family, path below its prefix) of a route's path; ("", path) outside the prefixed APIs."""
    for family, prefixes in FAMILIES:
        for prefix in prefixes:
            if path.startswith(prefix + "/") or path == prefix:
                return family, path[len(prefix) :]
    return "", path


def route_path(route: web.AbstractRoute) -> str:
    """The route's path as an OpenAPI template: `{name}` for each variable, regexes dropped."""
    assert route.resource is not None
    return route.resource.canonical


def _operation_id(method: str, path: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", f"{method} {path}").strip("_").lower()


def _undocumented(method: str, path: str) -> Operation:
    return {
        "summary": f"{method} {path} (not described yet)",
        "x-undocumented": True,
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": STRING} for name in re.findall(r"{(\w+)}", path)
        ],
        "responses": {"200": {"description": "OK"}, "4XX": CLIENT_ERROR},
    }


def _with_access(operation: Operation, access: Access, method: str, path: str) -> Operation:
    described = {**operation, "operationId": _operation_id(method, path), "x-access": access.value}
    if access is Access.PUBLIC:
        described["security"] = []
    elif access is Access.SIGNED:
        described["security"] = [{"partToken": []}]
    else:  # the document-wide credentials; with auth on, a missing or wrong one is 401, too little right 403
        described["responses"] = {
            **operation["responses"],
            "401": error("No valid credential (with authentication on)"),
            "403": error("The credential may not do this (with authentication on)"),
        }
    return described


def build_document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.0 document of every route in `app`'s route table."""
    paths: dict[str, dict[str, Operation]] = {}
    for route, access in app[ROUTE_ACCESS_KEY].items():
        path = route_path(route)
        family, below = split_path(path)
        operation = OPERATIONS.get((family, route.method, below))
        methods = ANY_METHOD if route.method == "*" else (route.method.lower(),)
        for method in methods:
            described = operation or _undocumented(method.upper(), path)
            paths.setdefault(path, {})[method] = _with_access(described, access, method, path)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "artifact-gateway",
            "version": __version__,
            "description": (
                "MLflow's tracking REST API and artifact proxy (mlflow-artifacts), wire-compatible with "
                "`mlflow server`, as served by this gateway in its current mode. Every error is "
                '`{"error_code": ..., "message": ...}`. Both /api/... and /ajax-api/... prefixes are served.'
            ),
        },
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": COMPONENT_SCHEMAS, "securitySchemes": SECURITY_SCHEMES},
        "security": CREDENTIALS,
        "tags": [
            {"name": "tracking", "description": "Experiments, runs, metrics, params, tags, logged models"},
            {"name": "artifacts", "description": "The mlflow-artifacts proxy: files under the destination"},
            {"name": "multipart", "description": "MLflow's multipart upload API"},
            {"name": "server", "description": "Health, version, capabilities, this document"},
            {"name": "ui", "description": "The web UI's HTML pages (server-rendered; same auth as the API)"},
        ],
    }


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(build_document(request.app))


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", OPENAPI_PATH, openapi_document, Access.PUBLIC)
