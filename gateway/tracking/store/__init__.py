"""The tracking part of the metadata store."""

from gateway.tracking.store.runs import (
    MetricPoint,
    TrackingStore,
    check_key,
    int_field,
    metric_value,
    now_ms,
    offset_token,
)

__all__ = ["MetricPoint", "TrackingStore", "check_key", "int_field", "metric_value", "now_ms", "offset_token"]
