"""Prometheus metrics, served at `GET /metrics` and summed over every worker process.

prometheus_client's multiprocess mode is always on under `serve`: the server process makes a
private directory and names it in PROMETHEUS_MULTIPROC_DIR before any worker exists, each worker
writes its values to memory-mapped files there, and a scrape (answered by whichever worker accepts
it) sums the files of all workers, including those of workers that died (their counters keep
counting; their gauges are dropped when the parent reaps them). The directory is removed at exit.

prometheus_client picks in-memory or file-backed values when it is first imported, so it is
imported here only when the first metric is made, after the directory is set. Every update is a
few microseconds on the event loop (benchmarks/RESULTS.md), made once per request or transfer,
never per chunk.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
"""Seconds: API calls fall in the first buckets, transfers of large artifacts up to ten minutes."""
UNMATCHED = "unmatched"
_DIR_PREFIX = "artifact-gateway-metrics-"
_OWNER_LOCK = "owner.lock"
_METHODS = frozenset(("GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"))


class Metrics:
    """The gateway's metrics in this process."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values

        # The truth about the mode is the value class prometheus_client chose at its import.
        self.multiprocess: bool = getattr(values.ValueClass, "_multiprocess", False)
        self.registry: CollectorRegistry = CollectorRegistry()  # exposition without multiprocess mode
        registry = self.registry
        self.requests: Counter = Counter(
            "artifact_gateway_requests",
            "HTTP requests answered, by method, route template and status (499: the client went away).",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration: Histogram = Histogram(
            "artifact_gateway_request_duration_seconds",
            "Time from the request's headers to the end of its answer, body transfers included.",
            ["method", "route"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.bytes_received: Counter = Counter(
            "artifact_gateway_bytes_received",
            "Upload body bytes received (artifact PUTs and multipart parts), by storage backend.",
            ["backend"],
            registry=registry,
        )
        self.bytes_sent: Counter = Counter(
            "artifact_gateway_bytes_sent",
            "Download and listing body bytes sent from the storage backend.",
            ["backend"],
            registry=registry,
        )
        self.transfers: Gauge = Gauge(
            "artifact_gateway_transfers_in_flight",
            "Uploads (artifact PUTs and parts) and downloads being transferred now.",
            ["direction"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.backend_errors: Counter = Counter(
            "artifact_gateway_backend_errors",
            "Storage errors answered to clients (or cutting a download short), by backend and error class.",
            ["backend", "kind"],
            registry=registry,
        )
        self.multipart_open: Gauge = Gauge(
            "artifact_gateway_multipart_uploads_open",
            "Multipart uploads created since start and not yet completed or aborted.",
            # 'sum', not 'livesum': an upload lives in the storage, not in the worker that created
            # it, so a worker that dies must not take its creations out of the sum.
            multiprocess_mode="sum",
            registry=registry,
        )
        self.uploads_refused: Counter = Counter(
            "artifact_gateway_upload_slots_refused",
            "Uploads refused with 503 because --max-concurrent-uploads were already being received.",
            registry=registry,
        )
        self.password_checks: Counter = Counter(
            "artifact_gateway_password_checks",
            "Passwords checked against their scrypt hash (logins not answered from the cache), by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.uploads_in_flight: Gauge = self.transfers.labels("upload")
        self.downloads_in_flight: Gauge = self.transfers.labels("download")
        # Label children by (method, route, status), skipping `labels()` on the hot path; bounded
        # like the labels themselves.
        self._per_request: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe_request(
        self,
        method: str,
        route: str,
        status: int,
        seconds: float,
        *,
        backend: str,
        bytes_in: int,
        bytes_out: int,
        backend_error: str | None,
    ) -> None:
        """Count one answered request."""
        method = method if method in _METHODS else "other"
        children = self._per_request.get((method, route, status))
        if children is None:
            children = self.requests.labels(method, route, str(status)), self.duration.labels(method, route)
            self._per_request[method, route, status] = children
        children[0].inc()
        children[1].observe(seconds)
        if bytes_in:
            self.bytes_received.labels(backend).inc(bytes_in)
        if bytes_out:
            self.bytes_sent.labels(backend).inc(bytes_out)
        if backend_error is not None:
            self.backend_errors.labels(backend, backend_error).inc()

    def exposition(self) -> bytes:
        """The text format of every metric, summed over all workers in multiprocess mode."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


_metrics: Metrics | None = None


def metrics() -> Metrics:
    """This process's metrics, made on first use (after the multiprocess directory is set)."""
    global _metrics
    if _metrics is None:
        _metrics = Metrics()
    return _metrics


def route_label(request: web.Request) -> str:
    """The matched route's template (`/api/.../artifacts/{path}`), never the raw path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


@contextlib.contextmanager
def transfer(gauge: Gauge) -> Iterator[None]:
    """Count a transfer in flight on `gauge` (`metrics().uploads_in_flight` or `.downloads_in_flight`)."""
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


async def scrape(request: web.Request) -> web.Response:
    """`GET /metrics`: Prometheus text format; files are read in a thread, off the event loop."""
    body = await asyncio.to_thread(metrics().exposition)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def use_private_multiprocess_dir() -> str:
    """Make a private directory for every worker's metric files and name it in the environment.

    Call in the server process before any worker is forked and before the first metric is made.
    Any inherited PROMETHEUS_MULTIPROC_DIR is replaced: stale files of other processes would be
    summed in. The directory is removed when this process exits (workers leave by `os._exit`); one
    left by a server killed outright is removed by the next server to start (`_remove_abandoned`).
    """
    _remove_abandoned()
    path = tempfile.mkdtemp(prefix=_DIR_PREFIX)
    # Locked before it gets its name, so no other server can see it unlocked. The lock lasts while
    # this process or any worker forked from it (they share the open file) is alive.
    staging = os.path.join(path, "owner.lock.new")
    lock = os.open(staging, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    os.rename(staging, os.path.join(path, _OWNER_LOCK))
    os.environ[MULTIPROC_DIR_ENV] = path
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)
    return path


def _remove_abandoned() -> None:
    """Remove the metrics directories of servers that were killed outright: nobody holds their lock."""
    for candidate in glob.glob(os.path.join(tempfile.gettempdir(), f"{_DIR_PREFIX}*")):
        try:
            fd = os.open(os.path.join(candidate, _OWNER_LOCK), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:  # another user's, or one still being made: not ours to judge
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its server is alive
            continue
        finally:
            os.close(fd)
        shutil.rmtree(candidate, ignore_errors=True)


def forget_worker(pid: int) -> None:
    """A worker died: drop its gauges (its transfers ended with it); its counters still count."""
    path = os.environ.get(MULTIPROC_DIR_ENV)
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
