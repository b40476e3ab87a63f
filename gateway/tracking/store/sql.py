"""The tracking store's own SQL building blocks: the lifecycle filter and the size of an IN batch."""

from __future__ import annotations

from typing import Any

from gateway.store.errors import InvalidValue
from gateway.tracking.store.values import ACTIVE, DELETED

IN_BATCH = 500
"""Ids per `IN (...)`: bounds the bind parameters of one statement."""
VIEW_TYPE_NUMBERS = {"1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}
"""MLflow's ViewType enum values, which its server takes in place of the names."""


def lifecycle(query: Any, column: Any, view_type: str | None) -> Any:
    view = (view_type or "ACTIVE_ONLY").upper()
    view = VIEW_TYPE_NUMBERS.get(view, view)
    if view == "ACTIVE_ONLY":
        return query.where(column == ACTIVE)
    if view == "DELETED_ONLY":
        return query.where(column == DELETED)
    if view == "ALL":
        return query
    raise InvalidValue(f"Invalid view type '{view_type}': use ACTIVE_ONLY, DELETED_ONLY or ALL")
