"""Links made after a trace was logged: traces to a run (`traces/link-to-run`, `MlflowClient.link_traces_to_run`;
a search on `run_id` then finds them) and prompt versions to a trace (`traces/link-prompts`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.http.errors import ApiError
from gateway.traces.request_fields import string, string_list, trace_store


async def link_traces_to_run(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    trace_ids = string_list(fields, "trace_ids")
    if "trace_ids" not in fields:
        raise ApiError.invalid("Missing value for required parameter 'trace_ids'.")
    run_id = string(fields, "run_id", required=True)
    assert run_id is not None
    if trace_ids:
        await trace_store(request).link_traces_to_run(trace_ids, run_id)
    return {}


def _prompt_version(item: object) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    version = item.get("version") if isinstance(item, dict) else None
    if not isinstance(name, str) or not name or "/" in name:
        raise ApiError.invalid("Invalid value for parameter 'prompt_versions': each needs a name (without '/')")
    if not isinstance(version, (str, int)) or isinstance(version, bool) or not str(version).isdigit():
        raise ApiError.invalid(f"Invalid value for parameter 'prompt_versions': version of '{name}' is not a number")
    return f"{name}/{int(version)}"


async def link_prompts_to_trace(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    trace_id = string(fields, "trace_id", required=True)
    assert trace_id is not None
    versions = fields.get("prompt_versions")
    if not isinstance(versions, list):
        raise ApiError.invalid("Missing value for required parameter 'prompt_versions'.")
    prompt_versions = [_prompt_version(item) for item in versions]
    if prompt_versions:
        await trace_store(request).link_prompts_to_trace(trace_id, prompt_versions)
    return {}
