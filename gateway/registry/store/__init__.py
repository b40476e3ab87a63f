"""The model registry's part of the metadata store: registered models and model versions.

Every method checks its input and raises the store's own errors (`gateway.store.errors`); the HTTP
side maps them to MLflow's error codes. Times are milliseconds since the epoch.
"""

from __future__ import annotations

from gateway.registry.store.models import RegisteredModelStore
from gateway.registry.store.versions import ModelVersionStore, NewVersion, SourceModel, SourceRun
from gateway.registry.store.webhooks import Claimed, WebhookStore


class RegistryStore(RegisteredModelStore, ModelVersionStore, WebhookStore):
    """The registry store: registered models, model versions and webhooks over one async SQLAlchemy engine."""


__all__ = ["Claimed", "NewVersion", "RegistryStore", "SourceModel", "SourceRun"]
