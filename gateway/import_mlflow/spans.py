"""MLflow's stored span (its `Span.to_dict()` JSON, in a SQL store's `spans` table or a file store's
traces.json) as the OpenTelemetry protobuf JSON the gateway keeps."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gateway.import_mlflow.rows import Row

_STATUS_NAMES = {
    "STATUS_CODE_OK": "OK",
    "STATUS_CODE_ERROR": "ERROR",
    "STATUS_CODE_UNSET": "UNSET",
    "OK": "OK",
    "ERROR": "ERROR",
    "UNSET": "UNSET",
}


def _id_bytes(value: str | None) -> bytes:
    """A span or trace id as MLflow writes it: base64 of the bytes (or hex in some versions)."""
    if not value:
        return b""
    try:
        return bytes.fromhex(value)
    except ValueError:
        return base64.b64decode(value)


def _any_value(value: Any) -> AnyValue:
    """A decoded attribute value as OpenTelemetry's typed value (what MLflow's exporter sends)."""
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[_any_value(item) for item in value]))
    if isinstance(value, dict):
        return AnyValue(
            kvlist_value=KeyValueList(values=[KeyValue(key=str(k), value=_any_value(v)) for k, v in value.items()])
        )
    return AnyValue(string_value=str(value))


def _attribute(key: str, value: Any) -> KeyValue:
    """MLflow keeps each attribute JSON-encoded; its exporter sends the decoded value."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # else a plain string
            value = json.loads(value)
    return KeyValue(key=key, value=_any_value(value))


def span_row(trace_id: str, content: str | dict[str, Any]) -> Row:
    """The gateway's `spans` row for one MLflow span."""
    data: dict[str, Any] = json.loads(content) if isinstance(content, str) else content
    status = data.get("status") or {}
    code = status.get("code", "STATUS_CODE_UNSET") if isinstance(status, dict) else str(status)
    span = Span(
        trace_id=_id_bytes(data.get("trace_id")),
        span_id=_id_bytes(data.get("span_id")),
        parent_span_id=_id_bytes(data.get("parent_span_id")),
        name=data.get("name") or "",
        start_time_unix_nano=int(data.get("start_time_unix_nano") or 0),
        end_time_unix_nano=int(data.get("end_time_unix_nano") or 0),
        attributes=[_attribute(k, v) for k, v in (data.get("attributes") or {}).items()],
        status=Status(
            code=Status.StatusCode.Value(code if code.startswith("STATUS_CODE_") else f"STATUS_CODE_{code}"),
            message=(status.get("message") or "") if isinstance(status, dict) else "",
        ),
        events=[
            Span.Event(
                name=event.get("name") or "",
                time_unix_nano=int(event.get("time_unix_nano") or 0),
                attributes=[_attribute(k, v) for k, v in (event.get("attributes") or {}).items()],
            )
            for event in data.get("events") or []
        ],
    )
    return {
        "trace_id": trace_id,
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex() or None,
        "name": span.name,
        "start_time_unix_nano": span.start_time_unix_nano,
        "end_time_unix_nano": span.end_time_unix_nano or None,
        "status": _STATUS_NAMES.get(code, "UNSET"),
        "content": json.dumps(MessageToDict(span, preserving_proto_field_name=True), separators=(",", ":")),
    }
