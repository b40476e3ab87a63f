"""The building blocks of the OpenAPI descriptions, shared by every capability's `openapi.py`.

Schema helpers (`obj`, `array`, `ref`), responses in MLflow's error shape, parameters, `op` for an
operation, and the component schemas and parameters more than one capability refers to. The
descriptions themselves live next to their routes; `gateway.http.openapi` builds the document.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
Operation = dict[str, Any]
Operations = dict[tuple[str, str, str], Operation]
"""Descriptions keyed by (API family, METHOD, path below the family's prefix); see `openapi.split_path`."""

# -- schema building blocks ---------------------------------------------------------------------

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer", "format": "int64"}
INT64_LIKE: Schema = {
    "anyOf": [INTEGER, {"type": "string", "pattern": "^-?[0-9]+$"}],
    "description": "a 64-bit integer, or a string holding one",
}
PAGE_TOKEN: Schema = {**STRING, "description": "the next_page_token of the previous page"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def obj(properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    schema: Schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    return schema


# Component schemas every capability refers to; `build_document` places them around the capabilities' own.
ERROR_SCHEMA = obj(
    {
        "error_code": {**STRING, "example": "INVALID_PARAMETER_VALUE"},
        "message": STRING,
        "sqlstate": {**STRING, "example": "KAM00", "description": "MLflow 3.17's classification of the code"},
        "error_class": {**STRING, "example": "INVALID_PARAMETER_VALUE"},
    },
    ("error_code", "message"),
    description="Every error the gateway answers, MLflow's shape",
)
FILE_INFO_SCHEMA = obj(
    {"path": STRING, "is_dir": {"type": "boolean"}, "file_size": {"type": "integer", "minimum": 0}},
    ("path", "is_dir"),
)
EMPTY_SCHEMA: Schema = {"type": "object", "description": "`{}`: the call succeeded and has nothing to return"}

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


# Responses and parameters more than one capability describes.
EMPTY_OK = json_ok(ref("Empty"))
RUN_ID_QUERY = [
    query("run_id", {"type": "string", "minLength": 1}, "the run's id (one of run_id and run_uuid is needed)"),
    query("run_uuid", {"type": "string", "minLength": 1}, "the run's id, MLflow's older parameter name"),
]
MODEL_ID = {"name": "model_id", "in": "path", "required": True, "schema": STRING}

# Artifact routes: the `{path}` parameter is the rest of the URL, percent-decoded once by the gateway.
ARTIFACT_PATH = {
    "name": "path",
    "in": "path",
    "required": True,
    "schema": STRING,
    "description": "a destination-relative path; '/' separates segments, percent-decoded exactly once",
}
