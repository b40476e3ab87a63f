"""Builds the aiohttp application for one worker, with the routes its mode serves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.artifacts import api as artifacts_api
from gateway.artifacts import archive_api, multipart_api
from gateway.artifacts import openapi as artifacts_openapi
from gateway.artifacts.multipart_api import SIGNING_KEY
from gateway.artifacts.upload_limits import UPLOAD_SLOTS_KEY, UploadSlots
from gateway.auth import openapi as auth_openapi
from gateway.http import meta_api, meta_openapi, openapi
from gateway.http.access import ROUTE_ACCESS_KEY, Access, add_route, undeclared_routes
from gateway.http.app_keys import (
    AUTH_STORE_KEY,
    REGISTRY_STORE_KEY,
    REPOSITORY_KEY,
    SETTINGS_KEY,
    STORE_KEY,
    TRACE_STORE_KEY,
)
from gateway.http.client_address import TRUSTED_PROXIES_KEY
from gateway.http.hosts import ALLOWED_HOSTS_KEY, AllowedHosts
from gateway.http.middleware import IN_FLIGHT_KEY, MAX_JSON_BODY, InFlight, add_request_id, request_middleware
from gateway.http.openapi_schemas import Operations
from gateway.http.origin import same_site_only
from gateway.http.prefixes import ARTIFACTS_PREFIXES, TRACKING_PREFIXES
from gateway.http.request_values import ANY_PATH
from gateway.locations import LOCATIONS_KEY, ArtifactLocations, own_proxy_url
from gateway.logs import event
from gateway.registry import openapi as registry_openapi
from gateway.settings import Settings, SettingsError, parse_networks
from gateway.traces import openapi as traces_openapi
from gateway.tracking import openapi as tracking_openapi
from repositories import ArtifactRepository

NO_PROXY_MESSAGE = (
    "Artifact serving is disabled on this server (--no-serve-artifacts): clients write artifacts "
    "straight to the experiment's artifact location. Start it without --no-serve-artifacts to serve them."
)
ARTIFACTS_ONLY_MESSAGE = (
    "This server runs with --artifacts-only: the tracking API is disabled. Point MLFLOW_TRACKING_URI "
    "at the tracking server."
)


def create_app(settings: Settings, repository: ArtifactRepository | None, signing_key: bytes) -> web.Application:
    """The application for `settings`; `repository` is None when artifacts are not served.

    `signing_key` signs multipart part URLs; every worker that should accept a URL needs the same key.
    The tracking API and its database are set up unless the mode is artifacts-only. The modules that
    use the database (SQLAlchemy and its drivers, about 20 MiB in every worker) are imported only
    when the mode needs them, so an artifacts-only worker without --auth never loads them.
    """
    middlewares = [request_middleware]
    if settings.ui:  # outside the checks below, so that a refused form is answered with a page
        from gateway.ui.rendering import html_not_found

        middlewares.append(html_not_found)
    middlewares.append(same_site_only)  # before auth: a cross-site request costs no password check
    if settings.auth:
        from gateway.auth.middleware import auth_middleware

        middlewares.append(auth_middleware)
    app = web.Application(middlewares=middlewares, client_max_size=MAX_JSON_BODY)
    app.on_response_prepare.append(add_request_id)
    app[IN_FLIGHT_KEY] = InFlight()
    app[UPLOAD_SLOTS_KEY] = UploadSlots(settings.max_concurrent_uploads)
    app[SETTINGS_KEY] = settings
    app[TRUSTED_PROXIES_KEY] = parse_networks(settings.trusted_proxies)
    app[ALLOWED_HOSTS_KEY] = AllowedHosts(settings.allowed_hosts, settings.public_url)
    app[ROUTE_ACCESS_KEY] = {}
    meta_api.add_routes(app)
    openapi.add_routes(app, openapi_descriptions(settings), {**tracking_openapi.SCHEMAS, **registry_openapi.SCHEMAS})
    if repository is not None:
        app[REPOSITORY_KEY] = repository
        app.cleanup_ctx.append(_repository_lifecycle)
    if settings.serve_artifacts and repository is not None:
        app[SIGNING_KEY] = signing_key
        artifacts_api.add_routes(app)
        archive_api.add_routes(app)
        multipart_api.add_routes(app)
    else:
        for prefix in ARTIFACTS_PREFIXES:
            add_route(app, "*", f"{prefix}/{ANY_PATH}", meta_api.disabled(NO_PROXY_MESSAGE), Access.READ)
    if settings.artifacts_only:
        for prefix in TRACKING_PREFIXES:
            add_route(app, "*", f"{prefix}/{ANY_PATH}", meta_api.disabled(ARTIFACTS_ONLY_MESSAGE), Access.READ)
    else:
        from gateway.artifacts import run_artifacts
        from gateway.registry import api as registry_api
        from gateway.registry.webhooks import api as webhooks_api
        from gateway.traces import api as traces_api
        from gateway.tracking import api as tracking_api

        root = default_artifact_root(settings)
        own_root = serves_file_root(settings) or (
            settings.serve_artifacts and own_proxy_url(root, settings.public_url, settings.port)
        )
        app[LOCATIONS_KEY] = ArtifactLocations(root, repository, proxy=settings.serve_artifacts, own_root=own_root)
        tracking_api.add_routes(app)
        registry_api.add_routes(app)
        webhooks_api.add_routes(app)
        traces_api.add_routes(app)
        run_artifacts.add_routes(app)
    if settings.ui:
        from gateway import ui

        ui.add_routes(app, tracking=not settings.artifacts_only, artifacts=SIGNING_KEY in app)
    if settings.auth:
        from gateway.auth import admin_api

        admin_api.add_routes(app)
    if uses_database(settings):
        app.cleanup_ctx.append(_database_lifecycle)
        if not settings.artifacts_only:
            from gateway.registry.webhooks.delivery import deliveries_lifecycle

            app.cleanup_ctx.append(deliveries_lifecycle)  # after the database: it reads the registry store
    if undeclared := undeclared_routes(app):
        raise RuntimeError(f"routes added without an access rule (use gateway.http.access.add_route): {undeclared}")
    return app


def openapi_descriptions(settings: Settings) -> Operations:
    """Every route's OpenAPI description, handed to the document (`gateway.http` imports no capability).

    The UI's only where the UI is served, so that a worker without it still never imports `gateway.ui`.
    """
    operations = {
        **meta_openapi.OPERATIONS,
        **tracking_openapi.OPERATIONS,
        **registry_openapi.OPERATIONS,
        **traces_openapi.OPERATIONS,
        **artifacts_openapi.OPERATIONS,
        **auth_openapi.OPERATIONS,
    }
    if settings.ui:
        from gateway.ui import openapi as ui_openapi

        operations.update(ui_openapi.OPERATIONS)
    return operations


def default_artifact_root(settings: Settings) -> str:
    """Where new experiments keep artifacts: the setting, else this server's own proxy."""
    if settings.default_artifact_root:
        return settings.default_artifact_root
    if settings.serve_artifacts:
        return "mlflow-artifacts:/"
    raise SettingsError(
        "--no-serve-artifacts needs --default-artifact-root (e.g. s3://bucket/path, or "
        "mlflow-artifacts://artifacts-host:5000/root for a separate --artifacts-only server)"
    )


def serves_file_root(settings: Settings) -> bool:
    """Whether a no-proxy server stores runs' artifacts itself, under the operator's `file:` root."""
    root = settings.default_artifact_root or ""
    return not settings.serve_artifacts and not settings.artifacts_only and root.lower().startswith("file:")


def uses_database(settings: Settings) -> bool:
    """Whether this mode needs the metadata database: for the tracking API, or for users and tokens."""
    return not settings.artifacts_only or settings.auth


async def _database_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Connect to the metadata database (migrated before the workers started) for this worker."""
    from gateway.auth.middleware import AUTHENTICATOR_KEY, Authenticator
    from gateway.auth.store import AuthStore
    from gateway.registry.store import RegistryStore
    from gateway.store.database import create_engine
    from gateway.traces.store import TraceStore
    from gateway.tracking.store import TrackingStore

    settings = app[SETTINGS_KEY]
    engine = create_engine(settings.backend_store_uri)
    if not settings.artifacts_only:
        store = TrackingStore(
            engine, default_artifact_root(settings), truncate_long_values=settings.truncate_long_values
        )
        await store.ensure_default_experiment()
        app[STORE_KEY] = store
        app[REGISTRY_STORE_KEY] = RegistryStore(engine)
        app[TRACE_STORE_KEY] = TraceStore(engine)
    if settings.auth:
        auth_store = AuthStore(engine)
        app[AUTH_STORE_KEY] = auth_store
        app[AUTHENTICATOR_KEY] = Authenticator(auth_store, settings.failed_login_limit)
        if not await auth_store.list_users():
            event(
                "auth is on but no user exists yet; every request but /health will be refused until one is added "
                "with `artifact-gateway users add NAME --permission admin`",
                logging.WARNING,
            )
    yield
    if STORE_KEY in app:
        await app[STORE_KEY].close()
    await engine.dispose()


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
