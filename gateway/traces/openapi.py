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
from gateway.traces.limits import (
    DEFAULT_SEARCH_RESULTS,
    MAX_BATCH_GET,
    MAX_DELETE_IDS,
    MAX_LINKS_PER_REQUEST,
    MAX_SEARCH_RESULTS,
)

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
KEY_VALUES = array(obj({"key": STRING, "value": STRING}))
TRACE_INFO_V2 = obj(
    {
        "request_id": STRING,
        "experiment_id": STRING,
        "timestamp_ms": {"type": "integer"},
        "execution_time_ms": {"type": "integer"},
        "status": {"type": "string", "enum": ["TRACE_STATUS_UNSPECIFIED", "OK", "ERROR", "IN_PROGRESS"]},
        "request_metadata": KEY_VALUES,
        "tags": KEY_VALUES,
    },
    description="MLflow 2's TraceInfo",
)
REQUEST_ID = {"name": "request_id", "in": "path", "required": True, "schema": STRING}
NUMBER_OR_NAN: Schema = {"anyOf": [{"type": "number"}, {"type": "string", "enum": ["NaN"]}]}


def _trace_routes() -> dict[tuple[str, str], Operation]:
    return {
        ("POST", "/traces"): op(
            "Start (record) a trace's info; the answer tags it mlflow.trace.spansLocation=TRACKING_STORE. "
            "MLflow 2's start ({experiment_id, timestamp_ms, request_metadata, tags}; answered with a "
            "TraceInfo v2 of a new IN_PROGRESS trace) is taken on the same path",
            json_ok(
                {
                    "anyOf": [
                        obj({"trace": obj({"trace_info": TRACE_INFO})}),
                        obj({"trace_info": TRACE_INFO_V2}),
                    ]
                }
            ),
            tag=TAG,
            requestBody=json_body(
                {
                    "anyOf": [
                        obj({"trace": obj({"trace_info": TRACE_INFO}, ("trace_info",))}, ("trace",)),
                        obj(
                            {
                                "experiment_id": STRING,
                                "timestamp_ms": INT64_LIKE,
                                "request_metadata": KEY_VALUES,
                                "tags": KEY_VALUES,
                            },
                            ("experiment_id", "timestamp_ms"),
                        ),
                    ]
                }
            ),
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
        ("POST", "/traces/batchGetInfos"): op(
            f"Up to {MAX_BATCH_GET} trace infos without spans (unknown ids are left out)",
            json_ok(obj({"trace_infos": array(TRACE_INFO)})),
            tag=TAG,
            requestBody=json_body(
                obj(
                    {
                        "trace_ids": array(STRING, maxItems=MAX_BATCH_GET),
                        "experiment_ids": array(STRING, description="only traces of these experiments"),
                    },
                    ("trace_ids",),
                )
            ),
        ),
        ("POST", "/traces/link-to-run"): op(
            f"Link up to {MAX_LINKS_PER_REQUEST} existing traces to an existing run: a search on run_id then "
            "finds them (all or none; an unknown trace or run is a 404)",
            EMPTY_OK,
            tag=TAG,
            requestBody=json_body(
                obj(
                    {"trace_ids": array(STRING, maxItems=MAX_LINKS_PER_REQUEST), "run_id": STRING},
                    ("trace_ids", "run_id"),
                )
            ),
        ),
        ("POST", "/traces/link-prompts"): op(
            "Link prompt versions (name and version) to a trace",
            EMPTY_OK,
            tag=TAG,
            requestBody=json_body(
                obj(
                    {"trace_id": STRING, "prompt_versions": array(obj({"name": STRING, "version": STRING}))},
                    ("trace_id", "prompt_versions"),
                )
            ),
        ),
        ("POST", "/traces/calculate-filter-correlation"): op(
            "How two trace filters co-occur in experiments (NPMI, smoothed NPMI and the counts)",
            json_ok(
                obj(
                    {
                        "npmi": NUMBER_OR_NAN,
                        "npmi_smoothed": NUMBER_OR_NAN,
                        "filter1_count": {"type": "integer"},
                        "filter2_count": {"type": "integer"},
                        "joint_count": {"type": "integer"},
                        "total_count": {"type": "integer"},
                    }
                )
            ),
            tag=TAG,
            requestBody=json_body(
                obj(
                    {
                        "experiment_ids": array(STRING),
                        "filter_string1": STRING,
                        "filter_string2": STRING,
                        "base_filter": STRING,
                    },
                    ("experiment_ids", "filter_string1", "filter_string2"),
                )
            ),
        ),
        ("GET", "/traces"): op(
            "MLflow 2's trace search (TraceInfo v2)",
            json_ok(obj({"traces": array(TRACE_INFO_V2), "next_page_token": PAGE_TOKEN})),
            tag=TAG,
            parameters=[
                query("experiment_ids", array(STRING), required=True),
                query("filter", STRING),
                query("max_results", {"type": "integer", "minimum": 1, "maximum": MAX_SEARCH_RESULTS}),
                query("order_by", array(STRING)),
                query("page_token", PAGE_TOKEN),
            ],
        ),
        ("GET", "/traces/{request_id}/info"): op(
            "MLflow 2's trace info", json_ok(obj({"trace_info": TRACE_INFO_V2})), tag=TAG, parameters=[REQUEST_ID]
        ),
        ("PATCH", "/traces/{request_id}"): op(
            "MLflow 2's trace end: the end time, the status, metadata and tags merged",
            json_ok(obj({"trace_info": TRACE_INFO_V2})),
            tag=TAG,
            parameters=[REQUEST_ID],
            requestBody=json_body(
                obj(
                    {
                        "timestamp_ms": INT64_LIKE,
                        "status": TRACE_INFO_V2["properties"]["status"],
                        "request_metadata": KEY_VALUES,
                        "tags": KEY_VALUES,
                    },
                    ("timestamp_ms",),
                )
            ),
        ),
        ("GET", "/get-trace-artifact"): op(
            "A trace's spans as the traces.json file MLflow's UI reads ({\"spans\": [...]}, MLflow's span form)",
            json_ok({"type": "object", "properties": {"spans": array({"type": "object"})}}),
            tag=TAG,
            parameters=[
                query("request_id", STRING, required=True),
                query("path", STRING, "an attachment: not served (404)"),
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
