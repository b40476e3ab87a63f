"""OTLP/HTTP trace exports (`POST /v1/traces`) read into the store's span rows.

Protobuf (what MLflow's client sends) or OTLP JSON (ids in hex, as the OTLP spec writes them), gzip or
deflate compressed or not. Each span is kept as its protobuf JSON, which reads answer unchanged.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from typing import Any

from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gateway.store.errors import InvalidValue
from gateway.traces.limits import MAX_OTLP_BODY, MAX_SPANS_PER_REQUEST
from gateway.traces.store import SpanRow

TRACE_REQUEST_ID = "mlflow.traceRequestId"
_STATUS = {Status.STATUS_CODE_OK: "OK", Status.STATUS_CODE_ERROR: "ERROR", Status.STATUS_CODE_UNSET: "UNSET"}


class TooManySpans(InvalidValue):
    """An export over the span limit."""


def decompress(body: bytes, encoding: str | None) -> bytes:
    if not encoding or encoding == "identity":
        return body
    try:
        if encoding == "gzip":
            decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            decompressor = zlib.decompressobj()
        else:
            raise InvalidValue(f"Unsupported Content-Encoding '{encoding}': gzip, deflate or none")
        data = decompressor.decompress(body, MAX_OTLP_BODY + 1)
    except (zlib.error, gzip.BadGzipFile):
        raise InvalidValue(f"The request body is not valid {encoding} data") from None
    if len(data) > MAX_OTLP_BODY:
        raise TooManySpans(f"The decompressed OTLP export is larger than {MAX_OTLP_BODY} bytes")
    return data


def _hex_to_base64(data: Any) -> Any:
    for resource_spans in data.get("resourceSpans", data.get("resource_spans", [])) or []:
        for scope_spans in resource_spans.get("scopeSpans", resource_spans.get("scope_spans", [])) or []:
            for span in scope_spans.get("spans", []) or []:
                for name in ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"):
                    if isinstance(value := span.get(name), str) and value:
                        span[name] = base64.b64encode(bytes.fromhex(value)).decode()
    return data


def parse(body: bytes, media_type: str) -> ExportTraceServiceRequest:
    """The export in `body`; InvalidValue (a 400) when it is not one."""
    request = ExportTraceServiceRequest()
    if media_type == "application/x-protobuf":
        try:
            request.ParseFromString(body)
        except (DecodeError, RuntimeWarning, ValueError):
            raise InvalidValue("The request body is not a valid OTLP ExportTraceServiceRequest (protobuf)") from None
        return request
    if media_type == "application/json":
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            ParseDict(_hex_to_base64(data), request, ignore_unknown_fields=True)
        except (ValueError, TypeError, AttributeError, RecursionError) as exc:
            raise InvalidValue(
                f"The request body is not a valid OTLP ExportTraceServiceRequest (JSON): {exc}"
            ) from None
        return request
    raise InvalidValue(f"Invalid Content-Type: {media_type}. Expected: application/x-protobuf or application/json")


def _trace_id(span: Span) -> str:
    for attribute in span.attributes:
        if attribute.key == TRACE_REQUEST_ID and attribute.value.HasField("string_value"):
            try:
                value = json.loads(attribute.value.string_value)
            except ValueError:
                value = attribute.value.string_value
            if isinstance(value, str) and value:
                return value
    return "tr-" + span.trace_id.hex()


def span_rows(request: ExportTraceServiceRequest) -> list[SpanRow]:
    """Every span of the export as a row; InvalidValue for a span without ids or a start."""
    rows: list[SpanRow] = []
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if len(rows) >= MAX_SPANS_PER_REQUEST:
                    raise TooManySpans(f"An OTLP export may carry at most {MAX_SPANS_PER_REQUEST} spans")
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    raise InvalidValue("Every span needs a 16-byte trace_id and an 8-byte span_id")
                if not span.start_time_unix_nano:
                    raise InvalidValue(f"Span {span.span_id.hex()} has no start_time_unix_nano")
                trace_id = _trace_id(span)
                if len(trace_id) > 50 or "\x00" in trace_id + span.name:
                    raise InvalidValue("A span's trace id is at most 50 characters; ids and names hold no NUL")
                content = MessageToDict(span, preserving_proto_field_name=True)
                rows.append(
                    SpanRow(
                        trace_id=trace_id,
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano or None,
                        status=_STATUS.get(span.status.code, "UNSET"),
                        content=json.dumps(content, separators=(",", ":")),
                    )
                )
    return rows
