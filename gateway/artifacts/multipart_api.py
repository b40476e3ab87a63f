"""MLflow's multipart upload API (`mpu/create|complete|abort`), presigned downloads, and part URLs.

Parts go either straight to the storage (`--multipart-upload direct`: presigned S3 part URLs, SAS
block URLs on Azure) or through the gateway (`proxy`, the default and the only way on local disk):
then each part URL is the gateway's own `mpu/part` route with a signed, expiring token. Upload
state lives in the backend, so any worker or replica can receive parts and complete the upload.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from aiohttp import web

from gateway.artifacts.api import body_chunks, url_path, url_path_text
from gateway.artifacts.part_tokens import InvalidToken, PartGrant, sign, verify
from gateway.artifacts.upload_limits import UPLOAD_SLOTS_KEY, refuse_oversized_multipart
from gateway.http.access import Access, add_route
from gateway.http.app_keys import SETTINGS_KEY
from gateway.http.errors import ApiError
from gateway.http.prefixes import ARTIFACTS_PREFIXES
from gateway.http.request_values import ANY_PATH, parse_path, public_base_url, query_params, repository_of
from gateway.logs import audit
from gateway.metrics import metrics
from repositories import ArtifactPath
from repositories.base import UploadedPart

SIGNING_KEY = web.AppKey("signing_key", bytes)
MPU_NOT_SUPPORTED = "Multipart upload is not supported for the current artifact repository"
"""The exact message MLflow's client looks for before falling back to a single PUT."""
PRESIGNED_NOT_SUPPORTED = "Multipart download is not supported for the current artifact repository"
MAX_PARTS = 10_000


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The JSON object of the body, sent as `application/json` (as MLflow's client sends it): a body of
    another type is refused before it is parsed, as the tracking API does, so a page on another site
    cannot start an upload with a "simple" `text/plain` request."""
    raw = await request.read()
    if raw and request.content_type != "application/json":
        raise ApiError(400, "BAD_REQUEST", "Bad Request. Content-Type must be one of ['application/json'].")
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested thousands deep
        raise ApiError.invalid("The request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError.invalid("The request body must be a JSON object")
    return body


def _object_path(request: web.Request, action: str, body: dict[str, Any]) -> ArtifactPath:
    """`<directory from the URL>/<basename of the client's local file path in body.path>`."""
    directory = parse_path(url_path_text(request, f"mpu/{action}"), allow_trailing_slash=True)
    client_path = body.get("path")
    if not isinstance(client_path, str) or not client_path:
        raise ApiError.invalid("Missing value for required parameter 'path' (the file being uploaded)")
    name = re.split(r"[\\/]", client_path)[-1]  # a Windows client sends C:\\dir\\file.bin
    return parse_path("/".join([*directory.parts, name]))


def _upload_id(body: dict[str, Any]) -> str:
    upload_id = body.get("upload_id")
    if not isinstance(upload_id, str) or not upload_id:
        raise ApiError.invalid("Missing value for required parameter 'upload_id'")
    return upload_id


def _require_enabled(request: web.Request) -> None:
    if request.app[SETTINGS_KEY].multipart_upload == "off":
        raise ApiError(501, "NOT_IMPLEMENTED", MPU_NOT_SUPPORTED)


def _api_prefix(request: web.Request) -> str:
    return next(prefix for prefix in ARTIFACTS_PREFIXES if request.rel_url.raw_path.startswith(prefix))


async def create_upload(request: web.Request) -> web.Response:
    _require_enabled(request)
    body = await _json_object(request)
    path = _object_path(request, "create", body)
    num_parts = body.get("num_parts", 0)
    if not isinstance(num_parts, int) or isinstance(num_parts, bool) or not 0 <= num_parts <= MAX_PARTS:
        raise ApiError.invalid(f"num_parts must be an integer from 0 to {MAX_PARTS}")
    settings = request.app[SETTINGS_KEY]
    repository = repository_of(request)
    upload_id = await repository.create_multipart(path, num_parts=num_parts or None)
    metrics().multipart_open.inc()
    ttl = settings.part_url_ttl_seconds
    credentials: list[dict[str, object]] = []
    if settings.multipart_upload == "direct" and repository.can_presign:
        for number in range(1, num_parts + 1):
            presigned = await repository.presign_part(path, upload_id, number, ttl)
            credential: dict[str, object] = {"url": presigned.url, "part_number": number}
            if presigned.headers:
                credential["headers"] = presigned.headers
            credentials.append(credential)
    else:
        base = public_base_url(request)
        expires = int(time.time()) + ttl
        key = request.app[SIGNING_KEY]
        for number in range(1, num_parts + 1):
            token = sign(PartGrant(str(path), upload_id, number, expires), key)
            credentials.append({"url": f"{base}{_api_prefix(request)}/mpu/part?token={token}", "part_number": number})
    return web.json_response({"upload_id": upload_id, "credentials": credentials})


async def put_part(request: web.Request) -> web.Response:
    """A part sent to a gateway part URL; the token in the URL is the only authority needed."""
    _require_enabled(request)
    try:
        grant = verify(query_params(request).get("token", ""), request.app[SIGNING_KEY])
    except InvalidToken as exc:
        raise ApiError(403, "PERMISSION_DENIED", str(exc)) from None
    path = parse_path(grant.path)
    with request.app[UPLOAD_SLOTS_KEY].hold():
        etag = await repository_of(request).put_part(
            path, grant.upload_id, grant.number, body_chunks(request), content_length=request.content_length
        )
    return web.json_response({"part_number": grant.number, "etag": etag}, headers={"ETag": f'"{etag}"'})


async def complete_upload(request: web.Request) -> web.Response:
    _require_enabled(request)
    body = await _json_object(request)
    path = _object_path(request, "complete", body)
    upload_id = _upload_id(body)
    raw_parts = body.get("parts")
    if not isinstance(raw_parts, list) or not raw_parts:
        raise ApiError.invalid("Missing value for required parameter 'parts' (a list of part_number and etag)")
    parts = []
    for raw in raw_parts:
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("part_number"), int)
            or not isinstance(raw.get("etag"), str)
        ):
            raise ApiError.invalid("Each part needs an integer 'part_number' and a string 'etag'")
        parts.append(UploadedPart(raw["part_number"], raw["etag"].strip('"')))
    if len({part.number for part in parts}) != len(parts):
        raise ApiError.invalid("A part number appears twice in 'parts'")
    repository = repository_of(request)
    await refuse_oversized_multipart(request.app[SETTINGS_KEY], repository, path, upload_id, parts)
    info = await repository.complete_multipart(path, upload_id, parts)
    metrics().multipart_open.dec()
    audit(request, "complete_multipart", str(path), size=info.size, sha256=info.sha256, parts=len(parts))
    return web.json_response({})


async def abort_upload(request: web.Request) -> web.Response:
    _require_enabled(request)
    body = await _json_object(request)
    await repository_of(request).abort_multipart(_object_path(request, "abort", body), _upload_id(body))
    metrics().multipart_open.dec()
    return web.json_response({})


async def presigned_download(request: web.Request) -> web.Response:
    path = url_path(request, marker="presigned")  # a bad path is a 400 whatever the backend
    settings = request.app[SETTINGS_KEY]
    repository = repository_of(request)
    if not settings.presigned_downloads or not repository.can_presign:
        raise ApiError(501, "NOT_IMPLEMENTED", PRESIGNED_NOT_SUPPORTED)
    info = await repository.head(path)
    presigned = await repository.presign_get(path, settings.presigned_url_ttl_seconds)
    return web.json_response({"url": presigned.url, "headers": presigned.headers, "file_size": info.size})


def add_routes(app: web.Application) -> None:
    for prefix in ARTIFACTS_PREFIXES:
        add_route(app, "POST", f"{prefix}/mpu/create/{ANY_PATH}", create_upload, Access.WRITE)
        add_route(app, "POST", f"{prefix}/mpu/complete/{ANY_PATH}", complete_upload, Access.WRITE)
        add_route(app, "POST", f"{prefix}/mpu/abort/{ANY_PATH}", abort_upload, Access.WRITE)
        add_route(app, "PUT", f"{prefix}/mpu/part", put_part, Access.SIGNED)
        add_route(app, "GET", f"{prefix}/presigned/{ANY_PATH}", presigned_download, Access.READ)
