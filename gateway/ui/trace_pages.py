"""UI pages of traces: an experiment's Traces tab (a table searched with MLflow's trace filter language,
paged) and one trace (its span tree on a timeline, each span's inputs, outputs, attributes and events,
its assessments), linked to the runs the traces belong to."""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

from aiohttp import web
from yarl import URL

from gateway.http.app_keys import STORE_KEY, TRACE_STORE_KEY
from gateway.http.request_values import query_params, whole_number
from gateway.store.errors import InvalidValue
from gateway.store.pages import offset_token
from gateway.traces import search_filter, span_dicts
from gateway.traces.store import PROMPT_VERSION, RUN, TraceStore
from gateway.ui.rendering import page, render

TRACES_PER_PAGE = 50
MAX_PAGE = 100_000
PREVIEW_CHARS = 160
MAX_VALUE_CHARS = 20_000
"""Characters of one span value shown on the trace page (the rest is cut, saying so)."""
SOURCE_RUN = "mlflow.sourceRun"
INPUTS, OUTPUTS, SPAN_TYPE = "mlflow.spanInputs", "mlflow.spanOutputs", "mlflow.spanType"
HIDDEN_ATTRIBUTES = {INPUTS, OUTPUTS, SPAN_TYPE, "mlflow.traceRequestId"}


def _traces(request: web.Request) -> TraceStore:
    return request.app[TRACE_STORE_KEY]


def _cut(text: str | None, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _millis(timestamp: str) -> int:
    return round(datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def _assessment_value(assessment: dict[str, Any]) -> str:
    kind = assessment.get("feedback") or assessment.get("expectation") or {}
    if "error" in kind:
        return "error: " + str(kind["error"].get("error_message", kind["error"]))
    value = kind.get("value", kind.get("serialized_value"))
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _assessments(info: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": item.get("assessment_name", ""),
            "kind": "feedback" if "feedback" in item else "expectation",
            "value": _cut(_assessment_value(item), 400),
            "rationale": item.get("rationale", ""),
            "source": "{source_type} {source_id}".format(
                source_type=item.get("source", {}).get("source_type", ""),
                source_id=item.get("source", {}).get("source_id", ""),
            ).strip(),
            "valid": item.get("valid", True),
            "id": item.get("assessment_id", ""),
        }
        for item in info.get("assessments", [])
    ]


def _row(info: dict[str, Any]) -> dict[str, Any]:
    duration = info.get("execution_duration")
    return {
        "trace_id": info["trace_id"],
        "name": info["tags"].get("mlflow.traceName", ""),
        "request": _cut(info.get("request_preview"), PREVIEW_CHARS),
        "response": _cut(info.get("response_preview"), PREVIEW_CHARS),
        "state": info["state"],
        "time": _millis(info["request_time"]),
        "duration_ms": round(float(duration.rstrip("s")) * 1000) if duration else None,
        "tags": {k: v for k, v in sorted(info["tags"].items()) if not k.startswith("mlflow.")},
        "assessments": _assessments(info),
        "run_id": info["trace_metadata"].get(SOURCE_RUN),
    }


@page
async def traces_page(request: web.Request) -> web.StreamResponse:
    experiment = await request.app[STORE_KEY].get_experiment(request.match_info["experiment_id"])
    experiment_id = experiment["experiment_id"]
    query = query_params(request)
    search = query.get("filter", "").strip()
    number = whole_number(query.get("page") or "1", "page", MAX_PAGE)
    offset = (number - 1) * TRACES_PER_PAGE
    rows: list[dict[str, Any]] = []
    total, problem, token = 0, None, None
    try:
        clauses = search_filter.parse(search)
        infos, token = await _traces(request).search_traces(
            [experiment_id], clauses, [], TRACES_PER_PAGE, offset_token(offset) if offset else None
        )
        rows = [_row(info) for info in infos]
        (total,) = await _traces(request).count_traces([experiment_id], [clauses])
    except InvalidValue as exc:
        problem = exc.message  # a bad filter: said beside the box, the page stays
    here = URL(f"/experiments/{experiment_id}/traces").with_query({"filter": search} if search else {})
    return render(
        request,
        "traces.html",
        {
            "title": f"{experiment['name']} · traces",
            "experiment": experiment,
            "filter": search,
            "traces": rows,
            "problem": problem,
            "total": total,
            "first": offset + 1,
            "last": offset + len(rows),
            "previous_url": str(here.update_query(page=number - 1)) if number > 1 else None,
            "next_url": str(here.update_query(page=number + 1)) if token else None,
        },
        status=400 if problem else 200,
    )


def _hex(value: str | None) -> str | None:
    return base64.b64decode(value).hex() if value else None


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) > MAX_VALUE_CHARS:
        return text[:MAX_VALUE_CHARS] + f"\n… ({len(text) - MAX_VALUE_CHARS} more characters not shown)"
    return text


def span_tree(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The spans in tree order (each after its parent, children by start), with their depth and their
    place on the trace's timeline (percentages)."""
    if not spans:
        return []
    starts = [int(span.get("start_time_unix_nano", 0)) for span in spans]
    ends = [int(span.get("end_time_unix_nano") or span.get("start_time_unix_nano", 0)) for span in spans]
    begin, total = min(starts), max(max(ends) - min(starts), 1)
    ids = {_hex(span.get("span_id")) for span in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in sorted(spans, key=lambda item: int(item.get("start_time_unix_nano", 0))):
        parent = _hex(span.get("parent_span_id"))
        children.setdefault(parent if parent in ids else None, []).append(span)
    ordered: list[dict[str, Any]] = []

    def visit(span: dict[str, Any], depth: int) -> None:
        start = int(span.get("start_time_unix_nano", 0))
        end = int(span.get("end_time_unix_nano") or start)
        attributes = span_dicts.attributes(span.get("attributes", []))
        span_id = _hex(span.get("span_id"))
        ordered.append(
            {
                "span_id": span_id,
                "name": span.get("name", ""),
                "depth": depth,
                "type": span_dicts.decoded(attributes.get(SPAN_TYPE, "")) or "",
                "status": span.get("status", {}).get("code", "STATUS_CODE_UNSET").removeprefix("STATUS_CODE_"),
                "status_message": span.get("status", {}).get("message", ""),
                "duration_ms": (end - start) / 1_000_000,
                "left": 100 * (start - begin) / total,
                "width": max(100 * (end - start) / total, 0.4),
                "inputs": _shown(span_dicts.decoded(attributes[INPUTS])) if INPUTS in attributes else None,
                "outputs": _shown(span_dicts.decoded(attributes[OUTPUTS])) if OUTPUTS in attributes else None,
                "attributes": {
                    key: _shown(span_dicts.decoded(value))
                    for key, value in sorted(attributes.items())
                    if key not in HIDDEN_ATTRIBUTES
                },
                "events": [
                    {
                        "name": event.get("name", ""),
                        "offset_ms": (int(event.get("time_unix_nano", start)) - begin) / 1_000_000,
                        "attributes": {
                            key: _shown(value)
                            for key, value in span_dicts.attributes(event.get("attributes", [])).items()
                        },
                    }
                    for event in span.get("events", [])
                ],
            }
        )
        for child in children.get(span_id, []):
            visit(child, depth + 1)

    for root in children.get(None, []):
        visit(root, 0)
    return ordered


@page
async def trace_page(request: web.Request) -> web.StreamResponse:
    trace = await _traces(request).get_trace(request.match_info["trace_id"])
    info = trace["trace_info"]
    experiment_id = info["trace_location"]["mlflow_experiment"]["experiment_id"]
    if experiment_id != request.match_info["experiment_id"]:
        raise web.HTTPFound(f"/experiments/{experiment_id}/traces/{info['trace_id']}")
    experiment = await request.app[STORE_KEY].get_experiment(experiment_id)
    runs = [info["trace_metadata"][SOURCE_RUN]] if SOURCE_RUN in info["trace_metadata"] else []
    runs += [run for run in await _traces(request).linked(info["trace_id"], RUN) if run not in runs]
    row = _row(info)
    return render(
        request,
        "trace.html",
        {
            "title": row["name"] or info["trace_id"],
            "experiment": experiment,
            "trace": row,
            "info": info,
            "metadata": dict(sorted(info["trace_metadata"].items())),
            "system_tags": {k: v for k, v in sorted(info["tags"].items()) if k.startswith("mlflow.")},
            "runs": runs,
            "prompts": await _traces(request).linked(info["trace_id"], PROMPT_VERSION),
            "spans": span_tree(trace["spans"]),
        },
    )
