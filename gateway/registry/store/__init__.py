"""The model registry's part of the metadata store: registered models and model versions.

Every method checks its input and raises the store's own errors (`gateway.store.errors`); the HTTP
side maps them to MLflow's error codes. Times are milliseconds since the epoch.
"""

from __future__ import annotations

from gateway.registry.store.models import RegisteredModelStore
from gateway.registry.store.versions import ModelVersionStore, NewVersion, SourceModel, SourceRun


class RegistryStore(RegisteredModelStore, ModelVersionStore):
    """The registry store: registered models and model versions over one async SQLAlchemy engine."""


__all__ = ["NewVersion", "RegistryStore", "SourceModel", "SourceRun"]
