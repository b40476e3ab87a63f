"""MLflow's JSON routes: how a request's fields are read and a handler's answer is sent, one way for
every capability (tracking, registry, traces).

POST, PATCH and DELETE carry a JSON object (sent as `application/json`); GET carries the query string,
a repeated name becoming a list. No field may hold a NUL character: no store keeps one.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.http.access import Access, add_route
from gateway.http.errors import ApiError


@dataclass(frozen=True)
class EncodedJson:
    """A handler's answer already written as JSON text (a long list built as text, not as dicts): sent as is."""

    text: str


Handler = Callable[[web.Request, dict[str, Any]], Awaitable[dict[str, Any] | EncodedJson]]
"""A route's logic: the request and its fields in, the JSON answer out."""
Route = tuple[str, str, Handler, Access]
"""(method, path below the prefix, handler, access)."""


async def arguments(request: web.Request) -> dict[str, Any]:
    """The request's fields: the JSON body of POST/PATCH/DELETE, the query string of GET; a NUL in any
    of them is refused (`refuse_nul`)."""
    if request.method == "GET":
        fields: dict[str, Any] = {}
        for key, value in request.query.items():
            if key in fields:  # repeated keys (experiment_ids=1&experiment_ids=2) become lists
                fields[key] = [*fields[key], value] if isinstance(fields[key], list) else [fields[key], value]
            else:
                fields[key] = value
        refuse_nul(fields, "body")
        return fields
    raw = await request.read()
    if not raw:
        return {}
    if "Content-Type" not in request.headers:
        raise ApiError.invalid("Bad Request. Content-Type header is missing.")
    if request.content_type != "application/json":
        raise ApiError.invalid("Bad Request. Content-Type must be one of ['application/json'].")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "BAD_REQUEST", "The request body is not valid JSON") from None
    except RecursionError:  # a body nested thousands deep: no MLflow request nests more than a few levels
        raise ApiError(400, "BAD_REQUEST", "The request body nests too deeply to be an MLflow request") from None
    if not isinstance(body, dict):
        raise ApiError(400, "BAD_REQUEST", "The request body must be a JSON object")
    # JSON carries a NUL only as the escape \u0000 (json.loads refuses raw control characters in
    # strings): without one in the bytes there is none to find, and a 1,000-metric batch is not walked.
    if b"\\u0000" in raw:
        refuse_nul(body, "body")
    return body


def refuse_nul(value: Any, name: str) -> None:
    """A 400 for a NUL character in any string of the request: no store keeps one (PostgreSQL's text
    refuses it outright), and no MLflow name or value needs one."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError.invalid(f"Invalid value for parameter '{name}': it contains a NUL character")
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key, name)
            refuse_nul(item, key)
    elif isinstance(value, list):
        for item in value:
            refuse_nul(item, name)


def json_endpoint(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The aiohttp handler of a JSON route: reads the fields, refuses NULs, answers the handler's dict."""

    async def endpoint(request: web.Request) -> web.Response:
        fields = await arguments(request)
        refuse_nul(dict(request.match_info), "path")
        answer = await handler(request, fields)
        if isinstance(answer, EncodedJson):
            return web.Response(text=answer.text, content_type="application/json")
        return web.json_response(answer)

    return endpoint


def add_json_routes(app: web.Application, prefixes: Iterable[str], routes: Iterable[Route]) -> None:
    """Each of `routes` under each of `prefixes`, through the access table."""
    routes = list(routes)
    for prefix in prefixes:
        for method, path, handler, access in routes:
            add_route(app, method, prefix + path, json_endpoint(handler), access)
