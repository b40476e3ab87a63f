"""MLflow 2's trace protocol, which MLflow still serves under its 2.0 prefix for older clients: start
(`POST /traces` with an experiment id and a time), end (`PATCH /traces/{request_id}`), info
(`GET /traces/{request_id}/info`) and search (`GET /traces`), in TraceInfo (v2) JSON."""

from __future__ import annotations

import datetime
from typing import Any

from aiohttp import web

from gateway.http.errors import ApiError
from gateway.traces import search_filter
from gateway.traces.limits import DEFAULT_SEARCH_RESULTS, MAX_SEARCH_RESULTS
from gateway.traces.request_fields import integer, string, strings, trace_store

_STATUS_OF_STATE = {
    "STATE_UNSPECIFIED": "TRACE_STATUS_UNSPECIFIED",
    "OK": "OK",
    "ERROR": "ERROR",
    "IN_PROGRESS": "IN_PROGRESS",
}
_STATE_OF_STATUS = {status: state for state, status in _STATUS_OF_STATE.items()}


def _millis(timestamp: str) -> int:
    moment = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return round(moment.timestamp() * 1000)


def _duration_millis(duration: str) -> int:
    return round(float(duration.rstrip("s")) * 1000)


def v2_info(info: dict[str, Any]) -> dict[str, Any]:
    """A stored trace's TraceInfo (v2) JSON, from its TraceInfoV3 JSON."""
    answer: dict[str, Any] = {
        "request_id": info["trace_id"],
        "experiment_id": info["trace_location"]["mlflow_experiment"]["experiment_id"],
        "timestamp_ms": _millis(info["request_time"]),
        "status": _STATUS_OF_STATE[info["state"]],
        "request_metadata": [{"key": k, "value": v} for k, v in info["trace_metadata"].items()],
        "tags": [{"key": k, "value": v} for k, v in info["tags"].items()],
    }
    if "execution_duration" in info:
        answer["execution_time_ms"] = _duration_millis(info["execution_duration"])
    return answer


def _pairs(fields: dict[str, Any], name: str) -> dict[str, str]:
    value = fields.get(name)
    if value is None:
        return {}
    if not isinstance(value, list) or not all(
        isinstance(item, dict) and isinstance(item.get("key"), str) and isinstance(item.get("value", ""), str)
        for item in value
    ):
        raise ApiError.invalid(f"Invalid value for parameter '{name}': a list of {{key, value}} strings")
    return {item["key"]: item.get("value", "") for item in value}


def _required_time(fields: dict[str, Any]) -> int:
    timestamp = integer(fields.get("timestamp_ms"), "timestamp_ms")
    if timestamp is None:
        raise ApiError.invalid("Missing value for required parameter 'timestamp_ms'.")
    return timestamp


async def start_trace_v2(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    experiment_id = string(fields, "experiment_id", required=True)
    info = await trace_store(request).start_trace_v2(
        experiment_id, _required_time(fields), _pairs(fields, "request_metadata"), _pairs(fields, "tags")
    )
    return {"trace_info": v2_info(info)}


async def end_trace_v2(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    status = fields.get("status") or "TRACE_STATUS_UNSPECIFIED"
    if not isinstance(status, str) or status not in _STATE_OF_STATUS:
        raise ApiError.invalid(f"Invalid value for parameter 'status': one of {', '.join(_STATE_OF_STATUS)}")
    info = await trace_store(request).end_trace_v2(
        request.match_info["request_id"],
        _required_time(fields),
        _STATE_OF_STATUS[status],
        _pairs(fields, "request_metadata"),
        _pairs(fields, "tags"),
    )
    return {"trace_info": v2_info(info)}


async def get_trace_info_v2(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    return {"trace_info": v2_info(await trace_store(request).get_trace_info(request.match_info["request_id"]))}


async def search_traces_v2(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    experiment_ids: list[object] = list(strings(fields, "experiment_ids"))
    if not experiment_ids:
        raise ApiError.invalid("Missing value for required parameter 'experiment_ids'.")
    max_results = integer(fields.get("max_results"), "max_results") or DEFAULT_SEARCH_RESULTS
    if not 1 <= max_results <= MAX_SEARCH_RESULTS:
        raise ApiError.invalid(
            f"Invalid value {max_results} for parameter 'max_results': from 1 to {MAX_SEARCH_RESULTS}"
        )
    traces, token = await trace_store(request).search_traces(
        experiment_ids,
        search_filter.parse(string(fields, "filter")),
        strings(fields, "order_by"),
        max_results,
        string(fields, "page_token"),
    )
    answer: dict[str, Any] = {"traces": [v2_info(info) for info in traces]}
    if token:
        answer["next_page_token"] = token
    return answer
