"""The mlflow-artifacts proxy API: PUT, GET, HEAD, DELETE, one-level listing, MPU stubs.

Served under `/api/2.0/mlflow-artifacts/` and `/ajax-api/2.0/mlflow-artifacts/`. The artifact
path is taken from the raw URL and percent-decoded exactly once, here, into an `ArtifactPath`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.artifacts.digest_headers import expected_digests, repr_digest
from gateway.artifacts.downloads import head_response, send_download
from gateway.artifacts.upload_limits import UPLOAD_SLOTS_KEY, SizeLimit, limited_body
from gateway.http.access import Access, add_route
from gateway.http.app_keys import SETTINGS_KEY
from gateway.http.errors import ApiError
from gateway.http.prefixes import ARTIFACTS_PREFIXES
from gateway.http.request_keys import BYTES_OUT
from gateway.http.request_values import (
    ANY_PATH,
    decode_once,
    parse_path,
    query_params,
    repository_of,
    whole_number,
)
from gateway.logs import audit
from gateway.store.pages import name_token, page_name
from repositories import ArtifactPath, ListEntry

MAX_PAGE_SIZE = 10_000
_STREAM_BATCH = 500


def url_path_text(request: web.Request, marker: str) -> str:
    """The decoded text after `<api prefix>/<marker>/` in the request's raw URL path."""
    raw = request.rel_url.raw_path
    for prefix in ARTIFACTS_PREFIXES:
        route = f"{prefix}/{marker}/"
        if raw.startswith(route):
            return decode_once(raw[len(route) :])
    # The router matched a decoded form of the prefix; refuse URLs that encode the route itself.
    raise ApiError.invalid("Invalid path: the route part of the URL must not be percent-encoded")


def url_path(request: web.Request, *, marker: str = "artifacts", allow_trailing_slash: bool = False) -> ArtifactPath:
    return parse_path(url_path_text(request, marker), allow_trailing_slash=allow_trailing_slash)


def body_chunks(request: web.Request, route_limit: SizeLimit | None = None) -> AsyncIterator[bytes]:
    """The upload's body within the server's limits (size, client silence): see `limited_body`."""
    return limited_body(request, request.app[SETTINGS_KEY], route_limit)


async def put_artifact(request: web.Request) -> web.Response:
    text = url_path_text(request, "artifacts")
    if text == "" or text.endswith("/"):
        raise ApiError.invalid("Artifact path must include a filename (cannot end with '/').")
    path = parse_path(text)
    expected = expected_digests(request.headers)
    with request.app[UPLOAD_SLOTS_KEY].hold():
        info = await repository_of(request).put(
            path, body_chunks(request), expected=expected, content_length=request.content_length
        )
    headers = {"ETag": f'"{info.etag}"'}
    if info.sha256 is not None:
        headers["Repr-Digest"] = repr_digest(info.sha256)
    audit(request, "put", str(path), size=info.size, sha256=info.sha256)
    return web.json_response({"path": str(path), "file_size": info.size, "sha256": info.sha256}, headers=headers)


async def get_artifact(request: web.Request) -> web.StreamResponse:
    repository = repository_of(request)
    path = url_path(request)
    settings = request.app[SETTINGS_KEY]
    if settings.artifacts_redirect and repository.can_presign:
        await repository.head(path)  # 404 and 400 (a directory) here, not from the storage
        target = await repository.presign_get(path, settings.presigned_url_ttl_seconds)
        raise web.HTTPTemporaryRedirect(target.url)
    async with await repository.get(path) as download:
        return await send_download(request, download)


async def head_artifact(request: web.Request) -> web.StreamResponse:
    return await head_response(request, await repository_of(request).head(url_path(request)))


async def delete_artifact(request: web.Request) -> web.Response:
    path = url_path(request, allow_trailing_slash=True)
    if path.is_root:
        raise ApiError.invalid("Refusing to delete the whole artifact destination; name a path to delete.")
    await repository_of(request).delete(path)
    audit(request, "delete", str(path))
    return web.json_response({})


def _entry_json(prefix_free: ListEntry) -> dict[str, object]:
    if prefix_free.is_dir:
        return {"path": prefix_free.name, "is_dir": True}
    return {"path": prefix_free.name, "is_dir": False, "file_size": prefix_free.size}


def _max_results(value: str | None) -> int | None:
    return None if value is None else whole_number(value, "max_results", MAX_PAGE_SIZE)


async def list_artifacts(request: web.Request) -> web.StreamResponse:
    """One level of a directory, MLflow's shape; paged when `max_results` is given."""
    query = query_params(request)
    path = parse_path(query.get("path", ""), allow_trailing_slash=True)
    limit = _max_results(query.get("max_results"))
    listing = repository_of(request).list(path, start_after=page_name(query.get("page_token")))
    async with contextlib.aclosing(listing) as entries:  # a full page, or a client gone, stops it early
        if limit is None:
            return await _stream_listing(request, entries)
        page: list[ListEntry] = []
        async for entry in entries:
            if len(page) == limit:
                body: dict[str, object] = {"files": [_entry_json(e) for e in page]}
                body["next_page_token"] = name_token(page[-1].sort_key)
                return web.json_response(body)
            page.append(entry)
        return web.json_response({"files": [_entry_json(e) for e in page]} if page else {})


async def _stream_listing(request: web.Request, entries: AsyncIterator[ListEntry]) -> web.StreamResponse:
    """The whole listing as one JSON document written in batches, never built in memory."""
    first = await anext(entries, None)
    if first is None:
        return web.json_response({})
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    request[BYTES_OUT] = 0

    async def write(text: str) -> None:
        data = text.encode()
        request[BYTES_OUT] += len(data)
        await response.write(data)

    await write('{"files": [' + json.dumps(_entry_json(first)))
    batch: list[str] = []
    async for entry in entries:
        batch.append(json.dumps(_entry_json(entry)))
        if len(batch) >= _STREAM_BATCH:
            await write("".join(f", {item}" for item in batch))
            batch = []
    await write("".join(f", {item}" for item in batch) + "]}")
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    """Register the artifact API under both MLflow prefixes."""
    for prefix in ARTIFACTS_PREFIXES:
        add_route(app, "PUT", f"{prefix}/artifacts/{ANY_PATH}", put_artifact, Access.WRITE)
        add_route(app, "GET", f"{prefix}/artifacts/{ANY_PATH}", get_artifact, Access.READ)
        add_route(app, "HEAD", f"{prefix}/artifacts/{ANY_PATH}", head_artifact, Access.READ)
        add_route(app, "DELETE", f"{prefix}/artifacts/{ANY_PATH}", delete_artifact, Access.WRITE)
        add_route(app, "GET", f"{prefix}/artifacts", list_artifacts, Access.READ)
