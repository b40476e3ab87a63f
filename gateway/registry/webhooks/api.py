"""MLflow's webhook API: `POST/GET /webhooks`, `GET/PATCH/DELETE /webhooks/<id>`, `POST /webhooks/<id>/test`,
under /api/2.0/mlflow and /ajax-api/2.0/mlflow, with MLflow 3.17's shapes and messages.

A webhook's URL is checked against the operator's destination policy when it is set (a 400); its
secret is kept for signing and never answered.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.http.access import Access
from gateway.http.app_keys import REGISTRY_STORE_KEY
from gateway.http.json_api import Handler, add_json_routes
from gateway.http.prefixes import TRACKING_PREFIXES
from gateway.registry.store import values as v
from gateway.registry.store.webhooks import webhook_name, webhook_status
from gateway.registry.webhooks.delivery import DELIVERIES_KEY
from gateway.registry.webhooks.destinations import check_destination
from gateway.registry.webhooks.events import example_data, parse_event, parse_events


def _text(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise v.wrong_type(value, name)
    return value


def _required(fields: dict[str, Any], name: str) -> str:
    value = _text(fields, name)
    if not value:
        raise v.missing(name)
    return value


def _events(fields: dict[str, Any]) -> list[tuple[str, str]]:
    return [(event.entity, event.action) for event in parse_events(fields.get("events"))]


async def create_webhook(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    name, url = webhook_name(_required(fields, "name")), _required(fields, "url")
    if fields.get("events") is None:
        raise v.missing("events")
    events = _events(fields)
    description, secret, status = _text(fields, "description"), _text(fields, "secret"), _text(fields, "status")
    if status:
        webhook_status(status)  # every field is checked before the URL's host is looked up
    await check_destination(request.app[DELIVERIES_KEY].policy, url)
    webhook = await request.app[REGISTRY_STORE_KEY].create_webhook(
        name, url, events, description or None, secret or None, status or None
    )
    return {"webhook": webhook}


async def list_webhooks(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    raw = fields.get("max_results")
    try:
        max_results = int(raw) if raw not in (None, "", 0, "0") and not isinstance(raw, bool) else 100
    except (TypeError, ValueError):
        raise v.wrong_type(raw, "max_results") from None
    found, token = await request.app[REGISTRY_STORE_KEY].list_webhooks(max_results, _text(fields, "page_token"))
    body: dict[str, Any] = {"webhooks": found} if found else {}
    if token:
        body["next_page_token"] = token
    return body


async def get_webhook(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    return {"webhook": await request.app[REGISTRY_STORE_KEY].get_webhook(request.match_info["webhook_id"])}


async def update_webhook(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if name := _text(fields, "name"):
        changes["name"] = webhook_name(name)
    if "description" in fields:
        changes["description"] = _text(fields, "description") or None
    if url := _text(fields, "url"):
        changes["url"] = url
    if "secret" in fields:
        changes["secret"] = _text(fields, "secret") or None
    if status := _text(fields, "status"):
        changes["status"] = webhook_status(status)
    events = _events(fields) if fields.get("events") else None
    if "url" in changes:
        await check_destination(request.app[DELIVERIES_KEY].policy, changes["url"])
    webhook = await request.app[REGISTRY_STORE_KEY].update_webhook(request.match_info["webhook_id"], changes, events)
    return {"webhook": webhook}


async def delete_webhook(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await request.app[REGISTRY_STORE_KEY].delete_webhook(request.match_info["webhook_id"])
    return {}


async def test_webhook(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    """One post of MLflow's example payload for `event` (else the webhook's first event), answered with
    its outcome; the destination policy applies as to any delivery."""
    store = request.app[REGISTRY_STORE_KEY]
    webhook_id = request.match_info["webhook_id"]
    webhook = await store.get_webhook(webhook_id)
    chosen = parse_event(fields["event"] if fields.get("event") else webhook["events"][0])
    result = await request.app[DELIVERIES_KEY].send_test(
        webhook["url"], await store.webhook_secret(webhook_id), chosen, example_data(chosen)
    )
    return {"result": result}


ROUTES: list[tuple[str, str, Handler, Access]] = [
    ("POST", "/webhooks", create_webhook, Access.WRITE),
    ("GET", "/webhooks", list_webhooks, Access.READ),
    ("GET", "/webhooks/{webhook_id}", get_webhook, Access.READ),
    ("PATCH", "/webhooks/{webhook_id}", update_webhook, Access.WRITE),
    ("DELETE", "/webhooks/{webhook_id}", delete_webhook, Access.WRITE),
    ("POST", "/webhooks/{webhook_id}/test", test_webhook, Access.WRITE),
]


def add_routes(app: web.Application) -> None:
    add_json_routes(app, TRACKING_PREFIXES, ROUTES)
