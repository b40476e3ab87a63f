"""Routes that describe the server: health, version, MLflow's capability probe, disabled modes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import MLFLOW_VERSION, __version__
from gateway.http.access import Access, add_route
from gateway.http.app_keys import AUTH_STORE_KEY, REPOSITORY_KEY, SETTINGS_KEY, STORE_KEY
from gateway.http.errors import ApiError
from gateway.http.prefixes import SERVER_INFO_PREFIXES
from gateway.logs import quiet_event
from gateway.metrics import scrape
from gateway.settings import Settings


async def health(request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def _probe(name: str, check: Awaitable[None]) -> str:
    """ "ok", or "unavailable" with the reason in the log only: the route is public, and the reason names
    hosts, ports, buckets and drivers (an S3 endpoint, a database's address) nobody outside should learn."""
    try:
        async with asyncio.timeout(5):
            await check
    except TimeoutError:
        quiet_event(
            f"not_ready:{name}", "readiness check failed", logging.WARNING, check=name, reason="no answer in 5 s"
        )
        return "unavailable"
    except Exception as exc:  # any failure means not ready
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        quiet_event(f"not_ready:{name}", "readiness check failed", logging.WARNING, check=name, reason=reason)
        return "unavailable"
    return "ok"


async def ready(request: web.Request) -> web.Response:
    """Readiness: the metadata database (or, artifacts-only with --auth, the users' database) and the
    artifact destination all answer (503 if not; why is logged, never answered)."""
    probes: dict[str, Awaitable[None]] = {}
    if (store := request.app.get(STORE_KEY)) is not None:
        probes["database"] = store.ping()  # users and tokens, if any, live in this same database
    elif (auth_store := request.app.get(AUTH_STORE_KEY)) is not None:
        probes["auth_database"] = auth_store.ping()
    if (repository := request.app.get(REPOSITORY_KEY)) is not None:
        probes["artifacts"] = repository.check()
    # At once: one slow dependency must not push the answer past the probe's timeout.
    results = await asyncio.gather(*(_probe(name, check) for name, check in probes.items()))
    checks = dict(zip(probes, results, strict=True))
    healthy = all(value == "ok" for value in checks.values())
    return web.json_response({"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503)


VERSION_HEADER = "X-Artifact-Gateway-Version"


async def version(request: web.Request) -> web.Response:
    """The MLflow version whose protocol is served (clients gate features on it); ours in a header."""
    return web.Response(text=MLFLOW_VERSION, headers={VERSION_HEADER: __version__})


async def server_info(request: web.Request) -> web.Response:
    """What MLflow's client probes before large transfers; flags are true only when they work."""
    settings = request.app[SETTINGS_KEY]
    repository = request.app.get(REPOSITORY_KEY) if settings.serve_artifacts else None
    body: dict[str, object] = {
        **({} if settings.artifacts_only else {"store_type": "SqlStore"}),
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": repository is not None
        and settings.multipart_upload != "off"
        # On local disk one streamed PUT beats MLflow's 10 MiB parts from 4 threads: half the
        # gateway's CPU (each part is hashed for its ETag, then the object once more) and the same
        # disk writes (docs/benchmarks/client-versus-mlflow.md). The routes stay for clients that
        # choose them (MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=true), and complete without a copy.
        and (repository.kind != "local" or settings.local_multipart_uploads),
        "multipart_downloads_enabled": repository is not None
        and settings.presigned_downloads
        and repository.can_presign,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},  # MLflow's AI gateway: not served here
        "artifact_gateway": {"version": __version__, "mode": mode_name(settings), "mlflow_protocol": MLFLOW_VERSION},
    }
    return web.json_response(body, headers={VERSION_HEADER: __version__})


def mode_name(settings: Settings) -> str:
    if settings.artifacts_only:
        return "artifacts-only"
    return "proxied" if settings.serve_artifacts else "no-proxy"


def disabled(message: str) -> Handler:
    """A handler answering 501 with `message`: a disabled feature must fail fast, not be retried."""

    async def handler(request: web.Request) -> web.Response:
        raise ApiError(501, "NOT_IMPLEMENTED", message)

    return handler


def add_routes(app: web.Application) -> None:
    for path, handler in (("/health", health), ("/health/ready", ready), ("/version", version)):
        add_route(app, "GET", path, handler, Access.PUBLIC)
        add_route(app, "HEAD", path, handler, Access.PUBLIC)
    add_route(app, "GET", "/metrics", scrape, Access.READ)  # Prometheus scrapes with a token when auth is on
    for prefix in SERVER_INFO_PREFIXES:
        add_route(app, "GET", f"{prefix}/server-info", server_info, Access.READ)
        add_route(app, "HEAD", f"{prefix}/server-info", server_info, Access.READ)
