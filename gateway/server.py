"""Process management: bind once, run one or several worker processes, stop gracefully.

With `--workers N` the parent binds the listening socket, forks N workers that all accept on it,
restarts a worker that dies, and forwards SIGTERM/SIGINT so each worker drains its requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import secrets
import signal
import socket
import ssl
import sys
import time
import traceback
from collections.abc import Callable

from aiohttp import web

from gateway import __version__
from gateway.app import create_app, default_artifact_root, serves_file_root, uses_database
from gateway.http.connections import GatewaySite, connection_limit, quiet_loop_errors, raise_open_file_limit
from gateway.http.meta_api import mode_name
from gateway.http.middleware import IN_FLIGHT_KEY
from gateway.logs import event
from gateway.memory import freeze_startup_objects, return_freed_memory_when_idle, tune_allocator
from gateway.metrics import forget_worker, use_private_multiprocess_dir
from gateway.settings import Settings, SettingsError
from gateway.store.startup import migrate_store, without_password
from repositories import ArtifactRepository, open_repository
from repositories.errors import RepositoryError
from repositories.factory import RepositoryOptions
from repositories.options import AzureOptions, S3Options

_RESTART_BACKOFF_S = 1.0


MAX_REQUEST_LINE = 64 << 10
"""Bytes of a request line (method, URL, version); aiohttp's default is 8,190."""
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def repository_options(settings: Settings) -> RepositoryOptions:
    part_size = settings.upload_part_size_mib << 20
    return RepositoryOptions(
        fsync=settings.fsync,
        s3=S3Options(
            endpoint_url=settings.s3_endpoint_url,
            addressing_style=settings.s3_addressing_style,
            checksums=settings.s3_checksums,
            part_size=part_size,
            max_parts_in_flight=settings.upload_parts_in_flight,
        ),
        azure=AzureOptions(
            api_version=settings.azure_api_version,
            block_size=part_size,
            max_blocks_in_flight=settings.upload_parts_in_flight,
        ),
    )


def open_destination(settings: Settings) -> ArtifactRepository | None:
    """The artifact repository (not started): the destination when artifacts are served; with
    --no-serve-artifacts, a `file:` --default-artifact-root (served through the run routes only, as
    MLflow serves such a root); else None."""
    if not settings.serve_artifacts:
        if not serves_file_root(settings):
            return None
        assert settings.default_artifact_root is not None
        try:
            return open_repository(settings.default_artifact_root, repository_options(settings))
        except RepositoryError as exc:
            raise SettingsError(f"default artifact root: {exc.message}") from None
    try:
        return open_repository(settings.artifacts_destination, repository_options(settings))
    except RepositoryError as exc:
        raise SettingsError(f"artifacts destination: {exc.message}") from None


async def _preflight(repository: ArtifactRepository) -> None:
    try:
        await repository.start()
        await repository.check()
    finally:
        await repository.close()


def prepare_database(settings: Settings) -> None:
    """Create or upgrade the metadata schema once, before any worker starts; one line on failure."""
    if not uses_database(settings):
        return
    if not settings.artifacts_only:
        default_artifact_root(settings)  # a missing root in no-proxy mode is a settings error
    migrate_store(settings.backend_store_uri)


def check_destination(settings: Settings) -> None:
    """Fail at start, in one line, when the destination cannot be reached or used."""
    repository = open_destination(settings)
    if repository is None:
        return
    try:
        asyncio.run(_preflight(repository))
    except RepositoryError as exc:
        raise SettingsError(f"artifacts destination '{settings.artifacts_destination}': {exc.message}") from None


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context from --tls-cert/--tls-key, or None for plain HTTP."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(
            f"cannot load --tls-cert '{settings.tls_cert}' / --tls-key '{settings.tls_key}': "
            f"{getattr(exc, 'strerror', None) or exc}"
        ) from None
    return context


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


def in_child_process(task: Callable[[Settings], None], settings: Settings) -> None:
    """Run a start-up step in a forked child and raise its `SettingsError` here.

    What the step imports and allocates (Alembic, a throwaway storage client) leaves with the
    child instead of staying resident in every worker.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report a settings error through the pipe, anything else as a traceback
        os.close(read_end)
        code = 0
        try:
            task(settings)
        except SettingsError as exc:
            os.write(write_end, str(exc).encode())
            code = 2
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 2:
        raise SettingsError(message)
    if code != 0:
        raise SettingsError(f"start-up step {task.__name__} failed (exit status {code}); see the trace above")


def serve(settings: Settings) -> None:
    """Run the server until SIGTERM or SIGINT."""
    tune_allocator()
    raise_open_file_limit()  # every connection is a descriptor: allow as many as the system lets us
    # Before forking workers: a bad destination or database is one line, not N worker crashes.
    in_child_process(check_destination, settings)
    in_child_process(prepare_database, settings)
    tls_context(settings)  # a bad certificate is one line now, not a crash in every worker
    repository = open_destination(settings)
    # Forked workers inherit the key, so a part URL signed by one is accepted by all of them.
    signing_key = settings.signing_key.encode() if settings.signing_key else secrets.token_bytes(32)
    sock = bind(settings)
    host, port = sock.getsockname()[:2]
    # From "listening" on, SIGTERM must mean a graceful stop: it waits, blocked, until the worker's
    # event loop (or the supervisor) has its handler, instead of killing the process in between.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    event(
        "listening",
        url=f"{'https' if settings.tls_cert else 'http'}://{host}:{port}",
        port=port,
        version=__version__,
        mode=mode_name(settings),
        workers=settings.workers,
        artifacts_destination=str(getattr(repository, "root", None) or settings.artifacts_destination),
        backend_store=without_password(settings.backend_store_uri) if uses_database(settings) else None,
    )
    if not ipaddress.ip_address(host).is_loopback:
        if not settings.auth:
            event(
                "listening beyond this machine without authentication: anyone who can reach it can read, write and "
                "delete artifacts and runs; start it with --auth (and users from `artifact-gateway users add`), "
                "put it behind an authenticating proxy, or keep --host 127.0.0.1",
                logging.WARNING,
                host=host,
            )
        elif settings.tls_cert is None:
            event(
                "passwords and tokens cross the network in clear text: serve HTTPS with --tls-cert/--tls-key or "
                "terminate TLS in front of the gateway",
                logging.WARNING,
                host=host,
            )
    use_private_multiprocess_dir()  # before the first metric and the first fork: workers share it
    if settings.workers == 1:
        asyncio.run(_run_worker(settings, sock, repository, signing_key))
    else:
        _supervise(settings, sock, signing_key)


async def _run_worker(
    settings: Settings, sock: socket.socket, repository: ArtifactRepository | None, signing_key: bytes
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    loop.set_exception_handler(quiet_loop_errors)  # e.g. accept() out of descriptors: a line, not a flood
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # one sent meanwhile arrives now
    app = create_app(settings, repository, signing_key)
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        auto_decompress=False,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        # A GET naming many runs (get-history-bulk with 1,000 run ids is about 40 KB) must reach the
        # handler, which answers MLflow's JSON 400 naming the limit, not aiohttp's plain-text refusal.
        max_line_size=MAX_REQUEST_LINE,
        keepalive_timeout=settings.keepalive_timeout_seconds,
    )
    await runner.setup()
    site = GatewaySite(
        runner,
        sock,
        ssl_context=tls_context(settings),
        limit=connection_limit(settings.max_connections),
        head_timeout=settings.request_head_timeout_seconds,
    )
    await site.start()
    freeze_startup_objects()
    trimmer = asyncio.create_task(return_freed_memory_when_idle(app[IN_FLIGHT_KEY]))
    await stop.wait()
    trimmer.cancel()
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


def _worker_main(settings: Settings, sock: socket.socket, signing_key: bytes) -> int:
    try:
        asyncio.run(_run_worker(settings, sock, open_destination(settings), signing_key))
        return 0
    except Exception:
        event("worker failed", logging.ERROR, pid=os.getpid(), exc_info=True)
        return 1


def _spawn(settings: Settings, sock: socket.socket, signing_key: bytes) -> int:
    pid = os.fork()
    if pid == 0:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # until the worker's loop handles them
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        os._exit(_worker_main(settings, sock, signing_key))
    return pid


def _supervise(settings: Settings, sock: socket.socket, signing_key: bytes) -> None:
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    workers: set[int] = set()
    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    # Stop signals stay blocked while forking, so `on_signal` always sees every worker started.
    workers.update(_spawn(settings, sock, signing_key) for _ in range(settings.workers))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    while workers:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        workers.discard(pid)
        forget_worker(pid)
        if not stopping:
            event("worker exited; restarting", logging.WARNING, pid=pid, status=os.waitstatus_to_exitcode(status))
            time.sleep(_RESTART_BACKOFF_S)
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            if not stopping:
                workers.add(_spawn(settings, sock, signing_key))
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    sock.close()
