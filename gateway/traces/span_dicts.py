"""Stored spans (OpenTelemetry protobuf JSON) in the forms readers other than the REST client want:
MLflow's own span dict (`traces.json`, what `get-trace-artifact` answers), and plain values for the UI."""

from __future__ import annotations

import json
from typing import Any


def any_value(value: dict[str, Any]) -> Any:
    """The Python value of an OTLP AnyValue in protobuf JSON."""
    if "string_value" in value:
        return value["string_value"]
    if "bool_value" in value:
        return value["bool_value"]
    if "int_value" in value:
        return int(value["int_value"])
    if "double_value" in value:
        return float(value["double_value"])
    if "array_value" in value:
        return [any_value(item) for item in value["array_value"].get("values", [])]
    if "kvlist_value" in value:
        return attributes(value["kvlist_value"].get("values", []))
    if "bytes_value" in value:
        return value["bytes_value"]
    return None


def attributes(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """OTLP key/value pairs as a dict of their values."""
    return {pair["key"]: any_value(pair.get("value", {})) for pair in pairs}


def decoded(value: Any) -> Any:
    """An MLflow attribute's value: the JSON it holds, or the string itself."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def mlflow_span(span: dict[str, Any]) -> dict[str, Any]:
    """MLflow's `Span.to_dict()` form of a stored span (ids base64, as MLflow writes them)."""
    status = span.get("status", {})
    return {
        "trace_id": span.get("trace_id", ""),
        "span_id": span.get("span_id", ""),
        "parent_span_id": span.get("parent_span_id") or None,
        "name": span.get("name", ""),
        "start_time_unix_nano": int(span.get("start_time_unix_nano", 0)),
        "end_time_unix_nano": int(span["end_time_unix_nano"]) if span.get("end_time_unix_nano") else None,
        "events": [
            {
                "name": event.get("name", ""),
                "time_unix_nano": int(event.get("time_unix_nano", 0)),
                "attributes": attributes(event.get("attributes", [])),
            }
            for event in span.get("events", [])
        ],
        "status": {"code": status.get("code", "STATUS_CODE_UNSET"), "message": status.get("message", "")},
        "attributes": {  # as MLflow reads a span back from OTLP: every value dumped to JSON
            key: json.dumps(value, ensure_ascii=False) for key, value in attributes(span.get("attributes", [])).items()
        },
        "links": [],
    }


def trace_data(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """The `traces.json` document of a trace: `{"spans": [...]}` in MLflow's span form."""
    return {"spans": [mlflow_span(span) for span in spans]}
