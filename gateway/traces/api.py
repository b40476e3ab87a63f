"""MLflow's tracing REST API over the trace store, and the OTLP span export (`POST /v1/traces`).

MLflow serves each trace route under its 2.0 and 3.0 prefixes (the 3.17 client starts traces and
reads them under 3.0, sets tags and deletes under 2.0); so does this module. Requests are parsed here;
what is valid is the store's to say, in its own errors (`gateway.store.errors`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from gateway.http.access import Access, add_route
from gateway.http.errors import ApiError
from gateway.http.json_api import Handler, add_json_routes
from gateway.http.prefixes import SERVER_INFO_PREFIXES, TRACKING_PREFIXES
from gateway.traces import legacy, links, otlp, search_filter, span_dicts
from gateway.traces.correlation import calculate_filter_correlation
from gateway.traces.limits import DEFAULT_SEARCH_RESULTS, MAX_BATCH_GET, MAX_DELETE_IDS, MAX_SEARCH_RESULTS
from gateway.traces.request_fields import (
    integer,
    millis_of_duration,
    millis_of_timestamp,
    positive,
    string,
    string_list,
    string_map,
    strings,
    trace_store,
)
from gateway.traces.store import STATES, TraceInfo

PREFIXES = (*TRACKING_PREFIXES, *SERVER_INFO_PREFIXES)
OTLP_PATH = "/v1/traces"
EXPERIMENT_HEADER = "X-Mlflow-Experiment-Id"


def _trace_info(fields: dict[str, Any]) -> TraceInfo:
    trace = fields.get("trace")
    info = trace.get("trace_info") if isinstance(trace, dict) else None
    if not isinstance(info, dict):
        raise ApiError.invalid("Missing value for required parameter 'trace.trace_info'.")
    trace_id = string(info, "trace_id", required=True)
    assert trace_id is not None
    if len(trace_id) > 50:
        raise ApiError.invalid("Invalid value for parameter 'trace_id': at most 50 characters")
    location = info.get("trace_location")
    experiment = location.get("mlflow_experiment") if isinstance(location, dict) else None
    experiment_id = experiment.get("experiment_id") if isinstance(experiment, dict) else None
    if experiment_id in (None, ""):
        raise ApiError.invalid("Only traces in an MLflow experiment are served: trace_location.mlflow_experiment")
    state = info.get("state") or "STATE_UNSPECIFIED"
    if state not in STATES:
        raise ApiError.invalid(f"Invalid value for parameter 'state': one of {', '.join(STATES)}")
    try:
        experiment_number = int(str(experiment_id))
    except ValueError:
        raise ApiError.invalid(
            f"Invalid experiment ID '{experiment_id}'. Experiment ID must be a valid integer."
        ) from None
    return TraceInfo(
        trace_id=trace_id,
        experiment_id=experiment_number,
        request_time=millis_of_timestamp(info.get("request_time"), "request_time"),
        execution_duration=millis_of_duration(info.get("execution_duration"), "execution_duration"),
        state=state,
        request_preview=string(info, "request_preview"),
        response_preview=string(info, "response_preview"),
        client_request_id=string(info, "client_request_id"),
        tags=string_map(info.get("tags"), "tags"),
        metadata=string_map(info.get("trace_metadata"), "trace_metadata"),
    )


async def start_trace(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    """MLflow 3's start (`{"trace": {"trace_info": ...}}`), or MLflow 2's on the same path."""
    if "trace" not in fields and "experiment_id" in fields:
        return await legacy.start_trace_v2(request, fields)
    return {"trace": {"trace_info": await trace_store(request).start_trace(_trace_info(fields))}}


async def get_trace_info(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    return {"trace": {"trace_info": await trace_store(request).get_trace_info(request.match_info["trace_id"])}}


async def get_trace(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    trace_id = string(fields, "trace_id", required=True)
    assert trace_id is not None
    return {"trace": await trace_store(request).get_trace(trace_id)}


def _batch_ids(fields: dict[str, Any], *, strict: bool = False) -> list[str]:
    ids = string_list(fields, "trace_ids") if strict else strings(fields, "trace_ids")
    if not ids:
        raise ApiError.invalid("Missing value for required parameter 'trace_ids'.")
    if len(ids) > MAX_BATCH_GET:
        raise ApiError.invalid(f"Invalid value for parameter 'trace_ids': at most {MAX_BATCH_GET} ids per call")
    return ids


async def batch_get_traces(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    traces = await trace_store(request).get_traces(_batch_ids(fields))
    if "experiment_ids" in fields:
        allowed = set(strings(fields, "experiment_ids"))
        traces = [
            t for t in traces if t["trace_info"]["trace_location"]["mlflow_experiment"]["experiment_id"] in allowed
        ]
    return {"traces": traces}


async def batch_get_trace_infos(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    experiment_ids: list[object] | None = None
    if "experiment_ids" in fields:
        experiment_ids = [*string_list(fields, "experiment_ids")]
    infos = await trace_store(request).get_trace_infos(_batch_ids(fields, strict=True), experiment_ids)
    return {"trace_infos": infos}


async def get_trace_artifact(request: web.Request) -> web.Response:
    """`get-trace-artifact`: the trace's `traces.json` (MLflow's span form), as MLflow's UI reads it."""
    trace_id = request.query.get("request_id")
    if not trace_id or "\x00" in trace_id:
        raise ApiError(400, "BAD_REQUEST", 'Request must include the "request_id" query parameter.')
    if request.query.get("path"):
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", "Trace attachments are not served by this server")
    trace = await trace_store(request).get_trace(trace_id)
    body = json.dumps(span_dicts.trace_data(trace["spans"]), separators=(",", ":")).encode()
    return web.Response(
        body=body,
        content_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="traces.json"', "X-Content-Type-Options": "nosniff"},
    )


async def search_traces(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    experiment_ids: list[object] = []
    locations = fields.get("locations")
    if locations is not None:
        if not isinstance(locations, list):
            raise ApiError.invalid("Invalid value for parameter 'locations': it must be a list")
        for location in locations:
            experiment = location.get("mlflow_experiment") if isinstance(location, dict) else None
            if isinstance(experiment, dict) and experiment.get("experiment_id") not in (None, ""):
                experiment_ids.append(experiment["experiment_id"])
    experiment_ids.extend(strings(fields, "experiment_ids"))
    if not experiment_ids:
        raise ApiError.invalid("Missing value for required parameter 'locations'.")
    max_results = integer(fields.get("max_results"), "max_results") or DEFAULT_SEARCH_RESULTS
    if not 1 <= max_results <= MAX_SEARCH_RESULTS:
        raise ApiError.invalid(
            f"Invalid value {max_results} for parameter 'max_results': from 1 to {MAX_SEARCH_RESULTS}"
        )
    clauses = search_filter.parse(string(fields, "filter"))
    traces, token = await trace_store(request).search_traces(
        experiment_ids, clauses, strings(fields, "order_by"), max_results, string(fields, "page_token")
    )
    answer: dict[str, Any] = {"traces": traces}
    if token:
        answer["next_page_token"] = token
    return answer


async def delete_traces(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    experiment_id = string(fields, "experiment_id", required=True)
    ids = strings(fields, "request_ids") or strings(fields, "trace_ids")
    if len(ids) > MAX_DELETE_IDS:
        raise ApiError.invalid(f"Invalid value for parameter 'request_ids': at most {MAX_DELETE_IDS} ids per call")
    deleted = await trace_store(request).delete_traces(
        experiment_id,
        max_timestamp_millis=integer(fields.get("max_timestamp_millis"), "max_timestamp_millis"),
        max_traces=positive(integer(fields.get("max_traces"), "max_traces"), "max_traces"),
        trace_ids=ids,
    )
    return {"traces_deleted": deleted}


def _tag_key(fields: dict[str, Any]) -> str:
    key = string(fields, "key", required=True)
    assert key is not None
    if len(key) > 250:
        raise ApiError.invalid("Invalid value for parameter 'key': at most 250 characters")
    return key


def _path_trace_id(request: web.Request) -> str:
    return request.match_info.get("trace_id") or request.match_info["request_id"]


async def set_trace_tag(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    value = string(fields, "value") or ""
    await trace_store(request).set_trace_tag(_path_trace_id(request), _tag_key(fields), value)
    return {}


async def delete_trace_tag(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    if request.method == "DELETE" and not fields:
        fields = {key: value for key, value in request.query.items()}
    await trace_store(request).delete_trace_tag(_path_trace_id(request), _tag_key(fields))
    return {}


_ASSESSMENT_FIELDS = (
    "assessment_name",
    "span_id",
    "source",
    "feedback",
    "expectation",
    "rationale",
    "metadata",
    "overrides",
)
_UPDATABLE = ("assessment_name", "expectation", "feedback", "rationale", "metadata")


def _assessment_part(assessment: dict[str, Any], name: str) -> Any:
    value = assessment.get(name)
    if name in ("feedback", "expectation", "source") and not isinstance(value, dict):
        raise ApiError.invalid(f"Invalid value for parameter 'assessment.{name}': it must be an object")
    if name == "metadata":
        return string_map(value, "assessment.metadata")
    if name in ("assessment_name", "span_id", "rationale", "overrides"):
        text = string(assessment, name, required=name == "assessment_name")
        if name == "assessment_name" and text is not None and len(text) > 250:
            raise ApiError.invalid("Invalid value for parameter 'assessment_name': at most 250 characters")
        return text
    return value


def _assessment_body(fields: dict[str, Any]) -> dict[str, Any]:
    assessment = fields.get("assessment")
    if not isinstance(assessment, dict):
        raise ApiError.invalid("Missing value for required parameter 'assessment'.")
    return assessment


async def create_assessment(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    given = _assessment_body(fields)
    if ("feedback" in given) == ("expectation" in given):
        raise ApiError.invalid("Exactly one of `feedback` and `expectation` must be given in an assessment.")
    assessment = {
        name: value
        for name in _ASSESSMENT_FIELDS
        if (name in given or name == "assessment_name") and (value := _assessment_part(given, name)) not in (None, {})
    }
    created = await trace_store(request).create_assessment(_path_trace_id(request), assessment)
    return {"assessment": created}


async def get_assessment(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    trace_id, assessment_id = _path_trace_id(request), request.match_info["assessment_id"]
    return {"assessment": await trace_store(request).get_assessment(trace_id, assessment_id)}


def _snake(path: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", path.strip()).lower()


async def update_assessment(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    given = _assessment_body(fields)
    mask = fields.get("update_mask")
    if isinstance(mask, dict):  # {"paths": [...]}, the message form
        mask = ",".join(path for path in mask.get("paths", []) if isinstance(path, str))
    if not isinstance(mask, str) or not mask.strip():
        raise ApiError.invalid("Missing value for required parameter 'update_mask'.")
    paths = [_snake(path) for path in mask.split(",") if path.strip()]
    if unknown := [path for path in paths if path not in _UPDATABLE]:
        raise ApiError.invalid(f"Invalid update_mask: {', '.join(unknown)} cannot be updated")
    if "feedback" in paths and "expectation" in paths:
        raise ApiError.invalid("Exactly one of `expectation` or `feedback` should be specified.")
    changes = {path: _assessment_part(given, path) for path in paths}
    trace_id, assessment_id = _path_trace_id(request), request.match_info["assessment_id"]
    return {"assessment": await trace_store(request).update_assessment(trace_id, assessment_id, changes)}


async def delete_assessment(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await trace_store(request).delete_assessment(_path_trace_id(request), request.match_info["assessment_id"])
    return {}


async def export_spans(request: web.Request) -> web.Response:
    """`POST /v1/traces`: an OTLP export into the experiment the header names, all spans or none."""
    experiment_id = request.headers.get(EXPERIMENT_HEADER)
    if not experiment_id:
        raise ApiError.invalid(f"Missing header {EXPERIMENT_HEADER}: the experiment to log the spans to")
    try:
        body = otlp.decompress(await request.read(), request.headers.get("Content-Encoding", "").lower() or None)
        rows = otlp.span_rows(otlp.parse(body, request.content_type))
    except otlp.TooManySpans as exc:
        raise ApiError(413, "BAD_REQUEST", exc.message) from None
    if rows:
        await trace_store(request).log_spans(experiment_id, rows)
    if request.content_type == "application/json":
        return web.json_response({})
    return web.Response(body=b"", content_type="application/x-protobuf")


ROUTES: list[tuple[str, str, Handler, Access]] = [
    ("POST", "/traces", start_trace, Access.WRITE),
    ("GET", "/traces", legacy.search_traces_v2, Access.READ),
    ("GET", "/traces/get", get_trace, Access.READ),
    ("GET", "/traces/batchGet", batch_get_traces, Access.READ),
    ("POST", "/traces/batchGetInfos", batch_get_trace_infos, Access.READ),
    ("POST", "/traces/search", search_traces, Access.READ),
    ("POST", "/traces/delete-traces", delete_traces, Access.WRITE),
    ("POST", "/traces/link-to-run", links.link_traces_to_run, Access.WRITE),
    ("POST", "/traces/link-prompts", links.link_prompts_to_trace, Access.WRITE),
    ("POST", "/traces/calculate-filter-correlation", calculate_filter_correlation, Access.READ),
    ("GET", "/traces/{request_id}/info", legacy.get_trace_info_v2, Access.READ),
    ("PATCH", "/traces/{trace_id}/tags", set_trace_tag, Access.WRITE),
    ("DELETE", "/traces/{trace_id}/tags", delete_trace_tag, Access.WRITE),
    ("POST", "/traces/{trace_id}/assessments", create_assessment, Access.WRITE),
    ("GET", "/traces/{trace_id}/assessments/{assessment_id}", get_assessment, Access.READ),
    ("PATCH", "/traces/{trace_id}/assessments/{assessment_id}", update_assessment, Access.WRITE),
    ("DELETE", "/traces/{trace_id}/assessments/{assessment_id}", delete_assessment, Access.WRITE),
    ("GET", "/traces/{trace_id}", get_trace_info, Access.READ),
    ("PATCH", "/traces/{request_id}", legacy.end_trace_v2, Access.WRITE),
]
"""Served under each of MLflow's 2.0 and 3.0 prefixes; the fixed paths come before `{trace_id}`."""


def add_routes(app: web.Application) -> None:
    add_json_routes(app, PREFIXES, ROUTES)
    for prefix in PREFIXES:
        add_route(app, "GET", prefix + "/get-trace-artifact", get_trace_artifact, Access.READ)
    add_route(app, "POST", OTLP_PATH, export_spans, Access.WRITE)
