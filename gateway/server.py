"""Process management: bind once, run one or several worker processes, stop gracefully.

With `--workers N` the parent binds the listening socket, forks N workers that all accept on it,
restarts a worker that dies, and forwards SIGTERM/SIGINT so each worker drains its requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import time

from aiohttp import web

from gateway import __version__
from gateway.app import create_app
from gateway.logs import event
from gateway.meta_api import mode_name
from gateway.middleware import IN_FLIGHT_KEY
from gateway.settings import Settings, SettingsError
from repositories import ArtifactRepository, open_repository
from repositories.errors import RepositoryError

_RESTART_BACKOFF_S = 1.0


def open_destination(settings: Settings) -> ArtifactRepository | None:
    """The artifact repository, or None when artifacts are not served; fails with one line."""
    if not settings.serve_artifacts:
        return None
    try:
        return open_repository(settings.artifacts_destination, fsync=settings.fsync)
    except RepositoryError as exc:
        raise SettingsError(f"artifacts destination: {exc.message}") from None


def bind(settings: Settings) -> socket.socket:
    """The listening socket, shared by every worker."""
    try:
        infos = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise SettingsError(f"cannot resolve --host '{settings.host}': {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound: {exc.strerror}"
        raise SettingsError(f"address {settings.host}:{settings.port} {reason}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def serve(settings: Settings) -> None:
    """Run the server until SIGTERM or SIGINT."""
    repository = open_destination(settings)  # validate the destination before forking
    sock = bind(settings)
    host, port = sock.getsockname()[:2]
    event(
        "listening",
        url=f"http://{host}:{port}",
        port=port,
        version=__version__,
        mode=mode_name(settings),
        workers=settings.workers,
        artifacts_destination=str(getattr(repository, "root", None) or settings.artifacts_destination),
    )
    if settings.workers == 1:
        asyncio.run(_run_worker(settings, sock, repository))
    else:
        _supervise(settings, sock)


async def _run_worker(settings: Settings, sock: socket.socket, repository: ArtifactRepository | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    app = create_app(settings, repository)
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        auto_decompress=False,
        shutdown_timeout=settings.shutdown_timeout_seconds,
    )
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    await stop.wait()
    # aiohttp's own shutdown stops reading request bodies, so an upload in flight would be lost:
    # stop accepting first, let in-flight requests finish within the grace period, then clean up.
    in_flight = app[IN_FLIGHT_KEY]
    event("shutting down", pid=os.getpid(), in_flight=in_flight.count, grace_s=settings.shutdown_timeout_seconds)
    await site.stop()
    try:
        async with asyncio.timeout(settings.shutdown_timeout_seconds):
            await in_flight.wait_idle()
    except TimeoutError:
        event("grace period over; closing requests still in flight", logging.WARNING, in_flight=in_flight.count)
    await runner.cleanup()


def _worker_main(settings: Settings, sock: socket.socket) -> int:
    try:
        asyncio.run(_run_worker(settings, sock, open_destination(settings)))
        return 0
    except Exception:
        event("worker failed", logging.ERROR, pid=os.getpid(), exc_info=True)
        return 1


def _spawn(settings: Settings, sock: socket.socket) -> int:
    pid = os.fork()
    if pid == 0:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        os._exit(_worker_main(settings, sock))
    return pid


def _supervise(settings: Settings, sock: socket.socket) -> None:
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    workers: set[int] = set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    workers.update(_spawn(settings, sock) for _ in range(settings.workers))
    while workers:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        workers.discard(pid)
        if not stopping:
            event("worker exited; restarting", logging.WARNING, pid=pid, status=os.waitstatus_to_exitcode(status))
            time.sleep(_RESTART_BACKOFF_S)
            if not stopping:
                workers.add(_spawn(settings, sock))
    sock.close()
