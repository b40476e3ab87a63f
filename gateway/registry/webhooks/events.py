"""The events a webhook can listen to, in MLflow's names, and the JSON each delivery carries.

A request names an event as `{"entity": "MODEL_VERSION_TAG", "action": "SET"}` (the proto's enum
names); a delivery's body says `"entity": "model_version_tag", "action": "set"`, as MLflow sends it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.store.errors import InvalidValue

VALID_ACTIONS: dict[str, tuple[str, ...]] = {
    "registered_model": ("created",),
    "model_version": ("created",),
    "model_version_tag": ("set", "deleted"),
    "model_version_alias": ("created", "deleted"),
    "prompt": ("created",),
    "prompt_version": ("created",),
    "prompt_tag": ("set", "deleted"),
    "prompt_version_tag": ("set", "deleted"),
    "prompt_alias": ("created", "deleted"),
}
"""MLflow 3.17's entities and their actions (its `budget_policy` belongs to the AI gateway, not served)."""
ACTIONS = ("created", "updated", "deleted", "set")


@dataclass(frozen=True, slots=True, order=True)
class Event:
    entity: str
    action: str

    def to_json(self) -> dict[str, str]:
        return {"entity": self.entity.upper(), "action": self.action.upper()}


def parse_event(value: object) -> Event:
    """A request's `{"entity": ..., "action": ...}`, checked as MLflow checks it."""
    if not isinstance(value, dict):
        raise InvalidValue(f"Webhook events must be a non-empty list of WebhookEvent objects: {value}.")
    entity, action = value.get("entity"), value.get("action")
    if not isinstance(entity, str) or entity.lower() not in VALID_ACTIONS:
        raise InvalidValue(f"Invalid webhook event entity: {entity!r}. Valid entities are: {sorted(VALID_ACTIONS)}")
    if not isinstance(action, str) or action.lower() not in ACTIONS:
        raise InvalidValue(f"Invalid webhook event action: {action!r}. Valid actions are: {list(ACTIONS)}")
    event = Event(entity.lower(), action.lower())
    if event.action not in VALID_ACTIONS[event.entity]:
        raise InvalidValue(
            f"Invalid action '{event.action}' for entity '{event.entity}'. "
            f"Valid actions are: {list(VALID_ACTIONS[event.entity])}"
        )
    return event


def parse_events(value: object) -> list[Event]:
    if not isinstance(value, list) or not value:
        raise InvalidValue(f"Webhook events must be a non-empty list of WebhookEvent objects: {value}.")
    return sorted({parse_event(item) for item in value})


def delivery_body(event: Event, data: dict[str, Any]) -> str:
    """The JSON a delivery posts (signed as is): MLflow's envelope around the event's data."""
    envelope = {
        "entity": event.entity,
        "action": event.action,
        "timestamp": datetime.now(UTC).isoformat(),
        "data": data,
    }
    return json.dumps(envelope)


EXAMPLES: dict[str, dict[str, Any]] = {
    "registered_model": {"name": "example_model", "tags": {"example_key": "example_value"},
                         "description": "An example registered model"},
    "model_version": {"name": "example_model", "version": "1", "source": "models:/123", "run_id": "abcd1234abcd5678",
                      "tags": {"example_key": "example_value"}, "description": "An example model version"},
    "prompt": {"name": "example_prompt", "tags": {"example_key": "example_value"}, "description": "An example prompt"},
    "prompt_version": {"name": "example_prompt", "version": "1", "template": "Hello {{name}}!",
                       "tags": {"example_key": "example_value"}, "description": "An example prompt version"},
}  # fmt: skip


def example_data(event: Event) -> dict[str, Any]:
    """What `webhooks/<id>/test` sends for `event`: MLflow's example payload of it."""
    if event.entity in EXAMPLES:
        return EXAMPLES[event.entity]
    name = "example_prompt" if event.entity.startswith("prompt") else "example_model"
    data: dict[str, Any] = {"name": name}
    if event.entity.endswith("version_tag"):
        data["version"] = "1"
    if event.entity.endswith("alias"):
        data["alias"] = "example_alias"
        if event.action == "created":
            data["version"] = "1"
    else:
        data["key"] = "example_key"
        if event.action == "set":
            data["value"] = "example_value"
    return data
