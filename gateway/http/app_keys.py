"""Where a worker keeps its stores, importable without loading the database stack."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from gateway.auth.store import AuthStore
    from gateway.tracking.store import TrackingStore

STORE_KEY: web.AppKey[TrackingStore] = web.AppKey("tracking_store")
AUTH_STORE_KEY: web.AppKey[AuthStore] = web.AppKey("auth_store")
