"""Answering GET and HEAD for a stored object: MLflow's headers, validators, one range.

Conditional requests follow RFC 9110 section 13.2.2; a single `bytes=` range is honoured, a
multi-range or malformed one is ignored (the whole object is sent), and an unsatisfiable one is
answered 416. Files on local disk go out with zero-copy `sendfile`.
"""

from __future__ import annotations

import asyncio
import mimetypes
import posixpath
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import BinaryIO

from aiohttp import web

from gateway.artifacts.digest_headers import repr_digest
from gateway.http.request_keys import BACKEND_ERROR, BYTES_OUT, ERROR, OUTCOME
from gateway.metrics import metrics, transfer
from repositories import Download, ObjectInfo
from repositories.errors import BackendError, RepositoryError

# MLflow serves these as text/plain whatever `mimetypes` says (mlflow/utils/mime_type_utils.py).
_TEXT_EXTENSIONS = frozenset(
    (
        "txt log err cfg conf cnf cf ini properties prop hocon toml yaml yml xml json js py py3 csv tsv md rst "
        "ipynb MLmodel mlproject MLproject"  # MLflow lists "mlproject" only, and so serves its own MLproject as binary
    ).split()
)
_TOKEN_CHARS = frozenset("!#$%&'*+-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`abcdefghijklmnopqrstuvwxyz|~")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
WHOLE_BODY_BYTES = 64 << 10
"""Bodies up to this size that are not files on disk are read whole and sent in one write."""


def content_type(name: str) -> str:
    """MLflow's guess: text/plain for its text extensions, else `mimetypes`, else octet-stream."""
    extension = posixpath.splitext(name)[1].lstrip(".") or name
    if extension in _TEXT_EXTENSIONS:
        return "text/plain"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _quote_header_value(value: str) -> str:
    if value and set(value) <= _TOKEN_CHARS:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def content_disposition(name: str) -> str:
    """`attachment` with the file name, exactly as MLflow builds it (RFC 6266 / RFC 5987)."""
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii") or "download"
        quoted = urllib.parse.quote(name, safe="!#$&+-.^_`|~")
        return f"attachment; filename={_quote_header_value(fallback)}; filename*=UTF-8''{quoted}"
    return f"attachment; filename={_quote_header_value(name)}"


def object_headers(info: ObjectInfo) -> dict[str, str]:
    """Headers every GET and HEAD of `info` carries."""
    headers = {
        "Content-Type": content_type(info.path.name),
        "Content-Disposition": content_disposition(info.path.name),
        "X-Content-Type-Options": "nosniff",
        "Accept-Ranges": "bytes",
        "ETag": f'"{info.etag}"',
        "Last-Modified": format_datetime(info.last_modified, usegmt=True),
    }
    if info.sha256 is not None:
        headers["Repr-Digest"] = repr_digest(info.sha256)
    return headers


@dataclass(frozen=True, slots=True)
class Slice:
    """The bytes to send: `length` bytes from `offset`; `partial` means 206."""

    offset: int
    length: int
    partial: bool


class NotModified(Exception):
    pass


class PreconditionFailed(Exception):
    pass


class RangeNotSatisfiable(Exception):
    pass


def _etags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def _matches(header: str, etag: str, *, weak: bool) -> bool:
    for tag in _etags(header):
        if tag == "*":
            return True
        if weak:
            tag = tag.removeprefix("W/")
        if tag == f'"{etag}"':
            return True
    return False


def _http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else None


def _seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def check_preconditions(request: web.BaseRequest, info: ObjectInfo) -> None:
    """Raise `PreconditionFailed` or `NotModified` as RFC 9110 section 13.2.2 orders."""
    headers = request.headers
    modified = _seconds(info.last_modified)
    if "If-Match" in headers:
        if not _matches(headers["If-Match"], info.etag, weak=False):
            raise PreconditionFailed
    elif (since := _http_date(headers.get("If-Unmodified-Since", ""))) is not None and modified > since:
        raise PreconditionFailed
    if "If-None-Match" in headers:
        if _matches(headers["If-None-Match"], info.etag, weak=True):
            raise NotModified
    elif (since := _http_date(headers.get("If-Modified-Since", ""))) is not None and modified <= since:
        raise NotModified


def select_slice(request: web.BaseRequest, info: ObjectInfo) -> Slice:
    """The part of the object to send, from `Range` and `If-Range`."""
    whole = Slice(0, info.size, partial=False)
    header = request.headers.get("Range")
    if header is None or request.method != "GET":
        return whole
    if_range = request.headers.get("If-Range")
    if if_range is not None:
        if if_range.startswith(('"', 'W/"')):
            if if_range != f'"{info.etag}"':
                return whole
        elif _http_date(if_range) != _seconds(info.last_modified):
            return whole
    match = _RANGE.match(header.strip())
    if match is None:  # malformed or several ranges: ignoring Range is allowed (RFC 9110 14.2)
        return whole
    first, last = match.groups()
    if first == "" and last == "":
        return whole
    if first == "":
        suffix = int(last)
        if suffix == 0 or info.size == 0:
            raise RangeNotSatisfiable
        start = max(0, info.size - suffix)
        return Slice(start, info.size - start, partial=True)
    start = int(first)
    if last and int(last) < start:  # syntactically invalid: ignore the header
        return whole
    if start >= info.size:
        raise RangeNotSatisfiable
    end = min(int(last), info.size - 1) if last else info.size - 1
    return Slice(start, end - start + 1, partial=True)


def _can_sendfile(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is not None and transport.get_extra_info("sslcontext") is None


async def _sendfile(request: web.BaseRequest, file: BinaryIO, offset: int, length: int) -> None:
    """Zero-copy send; a client gone before or during it is a ConnectionError like any other."""
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("client went away before the body was sent")
    try:
        await asyncio.get_running_loop().sendfile(transport, file, offset, length)
    except RuntimeError as exc:  # asyncio's "Transport is closing"
        if transport.is_closing():
            raise ConnectionResetError(str(exc)) from exc
        raise


def _plan(request: web.BaseRequest, info: ObjectInfo, headers: dict[str, str]) -> Slice | web.Response:
    """The slice to send, or the short answer (304, 412, 416) that replaces the body."""
    try:
        check_preconditions(request, info)
        return select_slice(request, info)
    except NotModified:
        return web.Response(status=304, headers={"ETag": headers["ETag"], "Last-Modified": headers["Last-Modified"]})
    except PreconditionFailed:
        return web.Response(status=412, headers={"ETag": headers["ETag"]})
    except RangeNotSatisfiable:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{info.size}", "ETag": headers["ETag"]})


def abort_mid_body(request: web.Request, exc: RepositoryError) -> None:
    """Storage failed after the status line went out: log it and close the connection.

    All a client can learn now is a body cut short (of its Content-Length, or of its last chunk),
    so the connection is closed rather than the body ended as if it were whole.
    """
    request[ERROR] = f"storage failed after {request.get(BYTES_OUT, 0)} bytes: {exc.message}"
    request[OUTCOME] = "storage_failed_mid_body"
    request[BACKEND_ERROR] = type(exc).__name__
    if request.transport is not None:
        request.transport.close()


async def send_download(request: web.Request, download: Download) -> web.StreamResponse:
    """Stream `download` as the answer to GET, honouring validators and one range."""
    info = download.info
    headers = object_headers(info)
    part = _plan(request, info, headers)
    if isinstance(part, web.Response):
        return part
    status = 206 if part.partial else 200
    if part.partial:
        headers["Content-Range"] = f"bytes {part.offset}-{part.offset + part.length - 1}/{info.size}"
    if download.file is None and part.length <= WHOLE_BODY_BYTES:
        return await _whole_body(request, download, part, status, headers)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = part.length
    with transfer(metrics().downloads_in_flight):
        await response.prepare(request)
        request[BYTES_OUT] = 0
        if part.length:
            file = download.file
            if file is not None and _can_sendfile(request):
                await _sendfile(request, file, part.offset, part.length)
                request[BYTES_OUT] = part.length
            else:
                try:
                    async for chunk in download.iter_range(part.offset, part.length):
                        await response.write(chunk)
                        request[BYTES_OUT] += len(chunk)
                except RepositoryError as exc:
                    abort_mid_body(request, exc)
                    return response
        await response.write_eof()
    return response


async def _whole_body(
    request: web.Request, download: Download, part: Slice, status: int, headers: dict[str, str]
) -> web.Response:
    """A small body read before the status line: a storage error is still an error answer, and
    the headers and the bytes leave in one write."""
    with transfer(metrics().downloads_in_flight):
        body = b"".join([chunk async for chunk in download.iter_range(part.offset, part.length)])
    if len(body) != part.length:  # shortened under us: the headers promised more
        raise BackendError(f"'{download.info.path}' changed while it was read; retry")
    request[BYTES_OUT] = len(body)
    return web.Response(status=status, headers=headers, body=body)


async def head_response(request: web.Request, info: ObjectInfo) -> web.StreamResponse:
    """Answer HEAD with the same headers a GET would carry."""
    headers = object_headers(info)
    answer = _plan(request, info, headers)
    if isinstance(answer, web.Response):
        return answer
    response = web.StreamResponse(headers=headers)
    response.content_length = info.size
    await response.prepare(request)
    await response.write_eof()
    return response
