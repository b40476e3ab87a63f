"""Builds the aiohttp application for one worker, with the routes its mode serves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from gateway import artifacts_api, meta_api, multipart_api
from gateway.artifacts_api import REPOSITORY_KEY, SETTINGS_KEY
from gateway.logs import event
from gateway.meta_api import TRACKING_PREFIXES
from gateway.middleware import IN_FLIGHT_KEY, InFlight, add_request_id, request_middleware
from gateway.multipart_api import SIGNING_KEY
from gateway.settings import Settings
from repositories import ArtifactRepository

NO_PROXY_MESSAGE = (
    "Artifact serving is disabled on this server (--no-serve-artifacts): clients write artifacts "
    "straight to the experiment's artifact location."
)
ARTIFACTS_ONLY_MESSAGE = (
    "This server runs with --artifacts-only: the tracking API is disabled. Point MLFLOW_TRACKING_URI "
    "at the tracking server."
)
TRACKING_NOT_BUILT_MESSAGE = "The tracking API is not available in this version of artifact-gateway."


def create_app(settings: Settings, repository: ArtifactRepository | None, signing_key: bytes) -> web.Application:
    """The application for `settings`; `repository` is None when artifacts are not served.

    `signing_key` signs multipart part URLs; every worker that should accept a URL needs the same key.
    """
    app = web.Application(middlewares=[request_middleware])
    app.on_response_prepare.append(add_request_id)
    app[IN_FLIGHT_KEY] = InFlight()
    app[SETTINGS_KEY] = settings
    meta_api.add_routes(app)
    if settings.serve_artifacts and repository is not None:
        app[REPOSITORY_KEY] = repository
        app[SIGNING_KEY] = signing_key
        artifacts_api.add_routes(app)
        multipart_api.add_routes(app)
        app.cleanup_ctx.append(_repository_lifecycle)
    else:
        for prefix in artifacts_api.API_PREFIXES:
            app.router.add_route("*", f"{prefix}/{{tail:[\\s\\S]*}}", meta_api.disabled(NO_PROXY_MESSAGE))
    tracking_message = ARTIFACTS_ONLY_MESSAGE if settings.artifacts_only else TRACKING_NOT_BUILT_MESSAGE
    for prefix in TRACKING_PREFIXES:
        app.router.add_route("*", f"{prefix}/{{tail:[\\s\\S]*}}", meta_api.disabled(tracking_message))
    return app


async def _repository_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Start the repository, sweep upload debris now and periodically, close it at the end."""
    repository = app[REPOSITORY_KEY]
    settings = app[SETTINGS_KEY]
    await repository.start()
    sweeper = asyncio.create_task(_sweep_forever(repository, settings.staging_ttl_seconds))
    yield
    sweeper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sweeper
    await repository.close()


async def _sweep_forever(repository: ArtifactRepository, ttl: float) -> None:
    while True:
        removed = await repository.sweep_abandoned(ttl)
        if removed:
            event("swept abandoned uploads", removed=removed)
        await asyncio.sleep(max(60.0, ttl / 4))
