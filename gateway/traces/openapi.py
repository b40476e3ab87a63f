"""The OpenAPI descriptions of the tracing routes (under MLflow's 2.0 and 3.0 prefixes) and of the
OTLP span export; see `gateway.http.openapi`."""

from __future__ import annotations

from gateway.http.openapi_schemas import (
    EMPTY_OK,
    INT64_LIKE,
    PAGE_TOKEN,
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
)
from gateway.traces.limits import DEFAULT_SEARCH_RESULTS, MAX_BATCH_GET, MAX_DELETE_IDS, MAX_SEARCH_RESULTS

TAG = "traces"
STRING_MAP: Schema = {"type": "object", "additionalProperties": STRING}
TRACE_LOCATION = obj(
    {"type": {**STRING, "example": "MLFLOW_EXPERIMENT"}, "mlflow_experiment": obj({"experiment_id": STRING})}
)
ASSESSMENT = obj(
    {
        "assessment_id": STRING,
        "assessment_name": {**STRING, "maxLength": 250},
        "trace_id": STRING,
        "span_id": STRING,
        "source": obj({"source_type": STRING, "source_id": STRING}),
        "create_time": {**STRING, "format": "date-time"},
        "last_update_time": {**STRING, "format": "date-time"},
        "feedback": {"type": "object", "description": "value, or error"},
        "expectation": {"type": "object", "description": "value, or serialized_value"},
        "rationale": STRING,
        "metadata": {"type": "object", "additionalProperties": STRING},
        "overrides": {**STRING, "description": "the assessment this one replaces; that one becomes valid=false"},
        "valid": {"type": "boolean"},
    },
    description="MLflow's Assessment: exactly one of feedback and expectation",
)
TRACE_INFO = obj(
    {
        "trace_id": {**STRING, "maxLength": 50},
        "client_request_id": STRING,
        "trace_location": TRACE_LOCATION,
        "request_preview": STRING,
        "response_preview": STRING,
        "request_time": {**STRING, "format": "date-time", "description": "protobuf JSON Timestamp (RFC 3339)"},
        "execution_duration": {**STRING, "example": "1.250s", "description": "protobuf JSON Duration"},
        "state": {"type": "string", "enum": ["STATE_UNSPECIFIED", "OK", "ERROR", "IN_PROGRESS"]},
        "trace_metadata": STRING_MAP,
        "tags": STRING_MAP,
        "assessments": array(ASSESSMENT),
    },
    description="MLflow's TraceInfoV3",
)
SPAN: Schema = {"type": "object", "description": "an OpenTelemetry span, protobuf JSON, as the client sent it"}
TRACE = obj({"trace_info": TRACE_INFO, "spans": array(SPAN)})
TRACE_ID = {"name": "trace_id", "in": "path", "required": True, "schema": STRING}
ASSESSMENT_ID = {"name": "assessment_id", "in": "path", "required": True, "schema": STRING}
ONE_ASSESSMENT = json_ok(obj({"assessment": ASSESSMENT}))


def _trace_routes() -> dict[tuple[str, str], Operation]:
    return {
        ("POST", "/traces"): op(
            "Start (record) a trace's info; the answer tags it mlflow.trace.spansLocation=TRACKING_STORE",
            json_ok(obj({"trace": obj({"trace_info": TRACE_INFO})})),
            tag=TAG,
            requestBody=json_body(obj({"trace": obj({"trace_info": TRACE_INFO}, ("trace_info",))}, ("trace",))),
        ),
        ("GET", "/traces/get"): op(
            "A trace with its spans",
            json_ok(obj({"trace": TRACE})),
            tag=TAG,
            parameters=[
                query("trace_id", STRING, required=True),
                query("allow_partial", {"type": "boolean"}, "accepted; every stored span is answered"),
            ],
        ),
        ("GET", "/traces/batchGet"): op(
            f"Up to {MAX_BATCH_GET} traces with their spans (unknown ids are left out)",
            json_ok(obj({"traces": array(TRACE)})),
            tag=TAG,
            parameters=[
                query("trace_ids", array(STRING, maxItems=MAX_BATCH_GET), required=True),
                query("experiment_ids", array(STRING), "only traces of these experiments"),
            ],
        ),
        ("POST", "/traces/search"): op(
            "Search trace infos: a filter over trace.status, trace.timestamp_ms, trace.execution_time_ms, "
            "trace.name, trace.run_id, tags.<key>, metadata.<key> joined by AND; newest first by default",
            json_ok(obj({"traces": array(TRACE_INFO), "next_page_token": PAGE_TOKEN})),
            tag=TAG,
            requestBody=json_body(
                obj(
                    {
                        "locations": array(TRACE_LOCATION),
                        "filter": STRING,
                        "max_results": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_SEARCH_RESULTS,
                            "default": DEFAULT_SEARCH_RESULTS,
                        },
                        "order_by": array(STRING),
                        "page_token": PAGE_TOKEN,
                    },
                    ("locations",),
                )
            ),
        ),
        ("POST", "/traces/delete-traces"): op(
            "Delete an experiment's traces by id, or those older than a time",
            json_ok(obj({"traces_deleted": {"type": "integer"}})),
            tag=TAG,
            requestBody=json_body(
                obj(
                    {
                        "experiment_id": STRING,
                        "max_timestamp_millis": INT64_LIKE,
                        "max_traces": INT64_LIKE,
                        "request_ids": array(STRING, maxItems=MAX_DELETE_IDS),
                    },
                    ("experiment_id",),
                )
            ),
        ),
        ("PATCH", "/traces/{trace_id}/tags"): op(
            "Set a trace tag",
            EMPTY_OK,
            tag=TAG,
            parameters=[TRACE_ID],
            requestBody=json_body(obj({"key": {**STRING, "maxLength": 250}, "value": STRING}, ("key",))),
        ),
        ("DELETE", "/traces/{trace_id}/tags"): op(
            "Delete a trace tag",
            EMPTY_OK,
            tag=TAG,
            parameters=[TRACE_ID],
            requestBody=json_body(obj({"key": {**STRING, "maxLength": 250}}, ("key",)), required=False),
        ),
        ("POST", "/traces/{trace_id}/assessments"): op(
            "Log feedback or an expectation on a trace (mlflow.log_feedback, log_expectation, override_feedback)",
            ONE_ASSESSMENT,
            tag=TAG,
            parameters=[TRACE_ID],
            requestBody=json_body(obj({"assessment": ASSESSMENT}, ("assessment",))),
        ),
        ("GET", "/traces/{trace_id}/assessments/{assessment_id}"): op(
            "An assessment", ONE_ASSESSMENT, tag=TAG, parameters=[TRACE_ID, ASSESSMENT_ID]
        ),
        ("PATCH", "/traces/{trace_id}/assessments/{assessment_id}"): op(
            "Update an assessment's name, feedback or expectation, rationale, metadata (merged)",
            ONE_ASSESSMENT,
            tag=TAG,
            parameters=[TRACE_ID, ASSESSMENT_ID],
            requestBody=json_body(
                obj(
                    {
                        "assessment": ASSESSMENT,
                        "update_mask": {**STRING, "example": "assessmentName,feedback", "description": "FieldMask"},
                    },
                    ("assessment", "update_mask"),
                )
            ),
        ),
        ("DELETE", "/traces/{trace_id}/assessments/{assessment_id}"): op(
            "Delete an assessment (the one it overrode becomes valid again)",
            EMPTY_OK,
            tag=TAG,
            parameters=[TRACE_ID, ASSESSMENT_ID],
        ),
        ("GET", "/traces/{trace_id}"): op(
            "A trace's info", json_ok(obj({"trace": obj({"trace_info": TRACE_INFO})})), tag=TAG, parameters=[TRACE_ID]
        ),
    }


OTLP: Operation = op(
    "Export spans (OTLP/HTTP, protobuf or JSON, gzip or deflate); all spans of the request are stored or none",
    {
        "description": "OK: an empty ExportTraceServiceResponse, in the request's encoding",
        "content": {"application/x-protobuf": {}, "application/json": {"schema": {"type": "object"}}},
    },
    tag=TAG,
    parameters=[
        {
            "name": "x-mlflow-experiment-id",
            "in": "header",
            "required": True,
            "schema": STRING,
            "description": "the experiment the spans' traces belong to",
        }
    ],
    requestBody={
        "required": True,
        "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object"}},
        },
    },
    more_responses={"413": error("More than 10000 spans, or a body over 16 MiB")},
)

OPERATIONS: Operations = {
    **{
        (family, method, path): operation
        for family in ("tracking", "server-info")
        for (method, path), operation in _trace_routes().items()
    },
    ("", "POST", "/v1/traces"): OTLP,
}
