"""Where a worker keeps its stores, importable without loading the database stack."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from gateway.store.auth_store import AuthStore
    from gateway.store.tracking_store import TrackingStore

STORE_KEY: web.AppKey[TrackingStore] = web.AppKey("tracking_store")
AUTH_STORE_KEY: web.AppKey[AuthStore] = web.AppKey("auth_store")
