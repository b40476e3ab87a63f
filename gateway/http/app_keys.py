"""Where a worker keeps its settings, repository and stores; importable without loading the database stack."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from gateway.settings import Settings
from repositories import ArtifactRepository

if TYPE_CHECKING:
    from gateway.auth.store import AuthStore
    from gateway.registry.store import RegistryStore
    from gateway.traces.store import TraceStore
    from gateway.tracking.store import TrackingStore

REPOSITORY_KEY = web.AppKey("repository", ArtifactRepository)
SETTINGS_KEY = web.AppKey("settings", Settings)

STORE_KEY: web.AppKey[TrackingStore] = web.AppKey("tracking_store")
AUTH_STORE_KEY: web.AppKey[AuthStore] = web.AppKey("auth_store")
TRACE_STORE_KEY: web.AppKey[TraceStore] = web.AppKey("trace_store")
REGISTRY_STORE_KEY: web.AppKey[RegistryStore] = web.AppKey("registry_store")
