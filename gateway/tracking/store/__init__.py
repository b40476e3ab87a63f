"""The tracking part of the metadata store: experiments, runs, metrics, datasets and logged models.

One module per entity, each a part of `TrackingStore` over the same engine. Every method checks
its input and raises the store's own errors (`gateway.store.errors`), which the HTTP side maps to
MLflow's error codes; times are milliseconds since the epoch, as MLflow sends them.
"""

from __future__ import annotations

from gateway.tracking.store.datasets import DatasetStore
from gateway.tracking.store.experiments import ExperimentStore
from gateway.tracking.store.logged_models import LoggedModelStore
from gateway.tracking.store.metrics import MetricStore
from gateway.tracking.store.runs import RunStore
from gateway.tracking.store.values import (
    MetricPoint,
    check_key,
    int_field,
    metric_value,
    missing,
    now_ms,
    wrong_type,
)


class TrackingStore(ExperimentStore, RunStore, MetricStore, DatasetStore, LoggedModelStore):
    """The tracking store: every entity's operations over one async SQLAlchemy engine."""


__all__ = [
    "MetricPoint",
    "TrackingStore",
    "check_key",
    "int_field",
    "metric_value",
    "missing",
    "now_ms",
    "wrong_type",
]
