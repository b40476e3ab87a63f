"""Limits on request bodies streamed into storage: size (a multipart upload's total too), uploads at
once, and client silence.

A refused or abandoned body never reaches storage half-written: the error is raised from inside
the body iterator, so the repository aborts the upload as it does for a vanished client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from aiohttp import web

from gateway.artifacts.slots import Slots
from gateway.http.errors import ApiError
from gateway.http.middleware import streams_body
from gateway.http.request_keys import BYTES_IN
from gateway.metrics import metrics, transfer
from gateway.settings import Settings
from repositories import ArtifactPath, ArtifactRepository
from repositories.base import UploadedPart

RETRY_AFTER_S = 1
STREAM_READ_BYTES = 1 << 20
"""Socket read size while a body of more than this streams in (asyncio reads 256 KiB at a time)."""


class UploadSlots:
    """At most `limit` uploads at once in this worker (0: no limit); one more is refused with 503.

    MLflow's client retries a 503 with backoff (and honours Retry-After), so overload slows clients
    down instead of failing them, and memory stays within `limit` uploads' buffers.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if self.limit and self.active >= self.limit:
            metrics().uploads_refused.inc()
            raise ApiError(
                503,
                "TEMPORARILY_UNAVAILABLE",
                f"This server is already receiving {self.limit} uploads; retry shortly.",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.active += 1
        try:
            with transfer(metrics().uploads_in_flight):
                yield
        finally:
            self.active -= 1


UPLOAD_SLOTS_KEY = web.AppKey("upload_slots", UploadSlots)


@dataclass(frozen=True, slots=True)
class SizeLimit:
    """The most bytes one upload may hold (0: no limit), and what its 413 tells the client."""

    size: int
    message: str

    def refusal(self, detail: str = "") -> ApiError:
        return ApiError(413, "INVALID_PARAMETER_VALUE", self.message + detail)


def server_size_limit(settings: Settings) -> SizeLimit:
    """`--max-upload-size-mib`."""
    size = settings.max_upload_size_mib << 20
    return SizeLimit(size, f"Uploads are limited to {size >> 20} MiB on this server (--max-upload-size-mib).")


async def refuse_oversized_multipart(
    settings: Settings, repository: ArtifactRepository, path: ArtifactPath, upload_id: str, parts: list[UploadedPart]
) -> None:
    """Before a multipart upload is assembled: past `--max-upload-size-mib` in all, abort it and refuse 413.

    The completion is the first point that is reliable: MLflow's `mpu/create` declares only the
    number of parts, parts arrive concurrently (and, with `--multipart-upload direct`, straight at
    the storage), while here the listed parts are exactly what would be stored. Each proxied part
    is already refused past the limit as it arrives (`limited_body`).
    """
    limit = server_size_limit(settings)
    if not limit.size:
        return
    size = await repository.multipart_size(path, upload_id, parts)
    if size > limit.size:
        await repository.abort_multipart(path, upload_id)
        metrics().multipart_open.dec()
        raise limit.refusal(
            f" The parts of this multipart upload add up to {size / (1 << 20):.1f} MiB;"
            " the upload was aborted and nothing was stored.",
        )


def limited_body(
    request: web.Request, settings: Settings, route_limit: SizeLimit | None = None
) -> AsyncIterator[bytes]:
    """The request body as it arrives, counted in `request[BYTES_IN]`.

    Refused with 413 past `--max-upload-size-mib`, or past `route_limit` where that is tighter (at
    once when Content-Length says so, before any storage is touched), and with 408 when the client
    sends nothing for `--client-idle-timeout-seconds`: a trickle of bytes cannot hold an upload open
    forever, while a healthy transfer of any length is never cut.
    """
    streams_body(request)  # no whole-body deadline: the idle timeout below bounds a stalled stream
    limit = server_size_limit(settings)
    if route_limit is not None and route_limit.size and (not limit.size or route_limit.size < limit.size):
        limit = route_limit
    if limit.size and request.content_length is not None and request.content_length > limit.size:
        raise limit.refusal()
    return _stream(request, limit, settings.client_idle_timeout_seconds)


LARGE_READ_STREAMS = 2
"""Bodies per worker read in large gulps at once; the others keep asyncio's read size."""
_large_reads = Slots(LARGE_READ_STREAMS)


@contextlib.contextmanager
def _large_socket_reads(request: web.Request) -> Iterator[None]:
    """While a large body streams in, read the socket in 1 MiB gulps instead of asyncio's 256 KiB.

    Fewer, larger chunks mean fewer event-loop turns, parser calls and hand-offs of the GIL to the
    thread that writes: a 1 GiB upload fell from 1.89 to 1.57 CPU-s per GiB and rose from 522 to 590
    MiB/s (benchmarks/RESULTS.md), and without them it still runs at 0.74x its speed now that the
    SHA-256 comes after the answer (828 against 1,108 MiB/s). A gulp can sit in the body's buffer, so only
    `LARGE_READ_STREAMS` bodies at once get them: many uploads at once share the cores anyway, and
    the worker's memory stays bounded. `max_size` is the read size of asyncio's plain socket
    transport; a transport without it (TLS, another event loop) keeps its own.
    """
    transport = request.transport
    default = getattr(transport, "max_size", None)
    small = request.content_length is not None and request.content_length <= STREAM_READ_BYTES
    if not isinstance(default, int) or small:
        yield
        return
    with _large_reads.try_hold() as large:
        if not large:
            yield
            return
        transport.max_size = STREAM_READ_BYTES  # type: ignore[union-attr]
        try:
            yield
        finally:
            transport.max_size = default  # type: ignore[union-attr]


async def _stream(request: web.Request, limit: SizeLimit, idle: float) -> AsyncIterator[bytes]:
    request[BYTES_IN] = 0
    content = request.content
    with _large_socket_reads(request):
        while True:
            # Bytes already buffered need no idle timer: arming one per chunk cost a small upload
            # about 8 % of the event loop's time (py-spy, benchmarks/RESULTS.md).
            chunk = content.read_nowait()
            if not chunk and not content.at_eof():
                try:
                    async with asyncio.timeout(idle):
                        chunk = await content.readany()
                except TimeoutError:
                    raise ApiError(
                        408,
                        "BAD_REQUEST",
                        f"No bytes arrived for {idle:g} s; the upload was abandoned and nothing was stored.",
                    ) from None
            if not chunk:
                return
            request[BYTES_IN] += len(chunk)
            if limit.size and request[BYTES_IN] > limit.size:
                raise limit.refusal()
            yield chunk
