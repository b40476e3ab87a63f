"""MLflow's model registry REST API (`/api/2.0/mlflow/registered-models/...`, `.../model-versions/...`,
and the same under `/ajax-api/2.0/mlflow`) over the registry store.

Requests are parsed here (JSON bodies for POST/PATCH/DELETE, query strings for GET, as MLflow's
client sends them); a version's source is checked in `gateway.registry.sources`; every other rule
lives in the store, whose errors `gateway.http.errors` maps to MLflow's JSON.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.http.access import Access
from gateway.http.app_keys import REGISTRY_STORE_KEY
from gateway.http.errors import ApiError
from gateway.http.json_api import Handler, add_json_routes
from gateway.http.prefixes import TRACKING_PREFIXES
from gateway.http.request_keys import user_of
from gateway.locations import LOCATIONS_KEY
from gateway.registry.sources import prompt_source, resolve_source
from gateway.registry.store import NewVersion, RegistryStore
from gateway.registry.store import values as v
from gateway.registry.store.base import IS_PROMPT_TAG
from gateway.registry.webhooks.delivery import DELIVERIES_KEY
from gateway.registry.webhooks.events import Event

PROMPT_TEXT_TAG, PROMPT_TYPE_TAG = "mlflow.prompt.text", "_mlflow_prompt_type"
CREATED = {
    entity: Event(entity, "created") for entity in ("registered_model", "prompt", "model_version", "prompt_version")
}


def _store(request: web.Request) -> RegistryStore:
    return request.app[REGISTRY_STORE_KEY]


def _text(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise v.wrong_type(value, name)
    return value


def _required(fields: dict[str, Any], name: str) -> str:
    value = _text(fields, name)
    if value is None:
        raise v.missing(name)
    return value


def _strings(request: web.Request, fields: dict[str, Any], name: str) -> list[str]:
    """A repeated string field: a JSON array in a body, one or more query arguments in a GET."""
    value = fields.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        if request.method != "GET":
            raise v.wrong_type(value, name)
        value = [value]
    if not all(isinstance(item, str) for item in value):
        raise ApiError.invalid(f"Invalid value for parameter '{name}': every entry must be a string")
    return value


def _tags(fields: dict[str, Any]) -> list[dict[str, Any]]:
    value = fields.get("tags")
    if value is None:
        return []
    if not isinstance(value, list):
        raise v.wrong_type(value, "tags")
    if not all(isinstance(item, dict) for item in value):
        raise ApiError.invalid("Invalid value for parameter 'tags': every entry must be a JSON object")
    return value


def _max_results(fields: dict[str, Any], default: int) -> int:
    value = fields.get("max_results")
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise v.wrong_type(value, "max_results")
    try:
        return int(value)
    except ValueError:
        raise v.wrong_type(value, "max_results") from None


async def _notify(
    request: web.Request,
    name: str,
    model: Event | None,
    prompt: Event | None,
    data: dict[str, Any],
    *,
    is_prompt: bool | None = None,
) -> None:
    """Queue MLflow's webhook event for a change just made: `model`'s, or `prompt`'s when `name` is a
    prompt (`None`: MLflow sends none). The worker posts the deliveries after this answer."""
    deliveries = request.app.get(DELIVERIES_KEY)
    if deliveries is not None:
        await deliveries.notify(name, model, prompt, data, is_prompt=is_prompt)


def _is_prompt(tags: dict[str, str]) -> bool:
    return tags.get(IS_PROMPT_TAG, "false").lower() == "true"


def _with_token(body: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token:
        body["next_page_token"] = token
    return body


# -- registered models -------------------------------------------------------------------------


async def create_registered_model(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    description = _text(fields, "description")
    model = await _store(request).create_registered_model(_required(fields, "name"), _tags(fields), description)
    tags = {tag["key"]: tag["value"] for tag in model.get("tags", [])}
    prompt = _is_prompt(tags)
    if prompt:
        tags = {k: value for k, value in tags.items() if k not in (IS_PROMPT_TAG, PROMPT_TYPE_TAG)}
    data = {"name": model["name"], "tags": tags, "description": description or ""}
    await _notify(request, model["name"], CREATED["registered_model"], CREATED["prompt"], data, is_prompt=prompt)
    return {"registered_model": model}


async def get_registered_model(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    return {"registered_model": await _store(request).get_registered_model(_required(fields, "name"))}


async def rename_registered_model(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    name = _required(fields, "name")
    model = await _store(request).rename_registered_model(name, _required(fields, "new_name"))
    return {"registered_model": model}


async def update_registered_model(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    name = _required(fields, "name")
    model = await _store(request).update_registered_model(name, _text(fields, "description"))
    return {"registered_model": model}


async def delete_registered_model(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await _store(request).delete_registered_model(_required(fields, "name"))
    return {}


async def search_registered_models(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    found, token = await _store(request).search_registered_models(
        _text(fields, "filter"),
        _max_results(fields, v.DEFAULT_MODELS),
        _strings(request, fields, "order_by"),
        _text(fields, "page_token"),
    )
    return _with_token({"registered_models": found} if found else {}, token)


async def get_latest_versions(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    found = await _store(request).get_latest_versions(_required(fields, "name"), _strings(request, fields, "stages"))
    return {"model_versions": found} if found else {}


async def set_registered_model_tag(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    name, key = _required(fields, "name"), _required(fields, "key")
    await _store(request).set_registered_model_tag(name, key, fields.get("value"))
    data = {"name": name, "key": key, "value": fields.get("value") or ""}
    await _notify(request, name, None, Event("prompt_tag", "set"), data)  # MLflow tells of a prompt's tags only
    return {}


async def delete_registered_model_tag(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    name, key = _required(fields, "name"), _required(fields, "key")
    await _store(request).delete_registered_model_tag(name, key)
    await _notify(request, name, None, Event("prompt_tag", "deleted"), {"name": name, "key": key})
    return {}


async def set_registered_model_alias(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    name, alias, version = _required(fields, "name"), _required(fields, "alias"), _required(fields, "version")
    await _store(request).set_registered_model_alias(name, alias, version)
    data = {"name": name, "alias": alias, "version": version}
    await _notify(request, name, Event("model_version_alias", "created"), Event("prompt_alias", "created"), data)
    return {}


async def delete_registered_model_alias(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    name, alias = _required(fields, "name"), _required(fields, "alias")
    await _store(request).delete_registered_model_alias(name, alias)
    data = {"name": name, "alias": alias}
    await _notify(request, name, Event("model_version_alias", "deleted"), Event("prompt_alias", "deleted"), data)
    return {}


async def get_model_version_by_alias(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    name, alias = _required(fields, "name"), _required(fields, "alias")
    return {"model_version": await _store(request).get_model_version_by_alias(name, alias)}


# -- model versions ----------------------------------------------------------------------------


async def create_model_version(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    name = v.model_name(_required(fields, "name"))
    source = _required(fields, "source")
    run_id, model_id = _text(fields, "run_id"), _text(fields, "model_id")
    run_link, description = _text(fields, "run_link"), _text(fields, "description")
    tags = v.tags(_tags(fields))
    store = _store(request)
    await store.get_registered_model(name)  # an unknown model is a 404 before its source is looked at
    if _is_prompt(tags):
        resolved = prompt_source(source, run_id, model_id)
    else:
        resolved = await resolve_source(store, request.app[LOCATIONS_KEY], source, run_id, model_id)
    version = await store.create_model_version(
        NewVersion(
            name=name,
            source=resolved.source,
            storage_location=resolved.storage_location,
            run_id=resolved.run_id,
            run_link=run_link,
            description=description,
            model_id=resolved.model_id,
            user_id=user_of(request),
            tags=tags,
        )
    )
    if _is_prompt(tags):
        shown = {k: value for k, value in tags.items() if k not in (IS_PROMPT_TAG, PROMPT_TYPE_TAG, PROMPT_TEXT_TAG)}
        data = {"name": name, "version": version["version"], "template": tags.get(PROMPT_TEXT_TAG), "tags": shown}
        data["description"] = description or None
        await _notify(request, name, None, CREATED["prompt_version"], data, is_prompt=True)
    else:
        data = {"name": name, "version": version["version"], "source": resolved.source, "run_id": resolved.run_id}
        data |= {"tags": tags, "description": description or None}
        await _notify(request, name, CREATED["model_version"], None, data, is_prompt=False)
    return {"model_version": version}


async def get_model_version(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    name, version = _required(fields, "name"), _required(fields, "version")
    return {"model_version": await _store(request).get_model_version(name, version)}


async def update_model_version(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    name, version = _required(fields, "name"), _required(fields, "version")
    found = await _store(request).update_model_version(name, version, _text(fields, "description"))
    return {"model_version": found}


async def delete_model_version(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    await _store(request).delete_model_version(_required(fields, "name"), _required(fields, "version"))
    return {}


async def transition_stage(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    name, version, stage = _required(fields, "name"), _required(fields, "version"), _required(fields, "stage")
    archive = fields.get("archive_existing_versions", False)
    if isinstance(archive, str) and request.method == "GET":
        archive = archive.lower() == "true"
    if not isinstance(archive, bool):
        raise v.wrong_type(archive, "archive_existing_versions")
    found = await _store(request).transition_model_version_stage(name, version, stage, archive)
    return {"model_version": found}


async def search_model_versions(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    found, token = await _store(request).search_model_versions(
        _text(fields, "filter"),
        _max_results(fields, v.DEFAULT_VERSIONS),
        _strings(request, fields, "order_by"),
        _text(fields, "page_token"),
    )
    return _with_token({"model_versions": found} if found else {}, token)


async def get_model_version_download_uri(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    name, version = _required(fields, "name"), _required(fields, "version")
    return {"artifact_uri": await _store(request).get_model_version_download_uri(name, version)}


async def set_model_version_tag(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    name, version, key = _required(fields, "name"), _required(fields, "version"), _required(fields, "key")
    await _store(request).set_model_version_tag(name, version, key, fields.get("value"))
    data = {"name": name, "version": version, "key": key, "value": fields.get("value") or ""}
    await _notify(request, name, Event("model_version_tag", "set"), Event("prompt_version_tag", "set"), data)
    return {}


async def delete_model_version_tag(request: web.Request, fields: dict[str, Any]) -> dict[str, Any]:
    name, version, key = _required(fields, "name"), _required(fields, "version"), _required(fields, "key")
    await _store(request).delete_model_version_tag(name, version, key)
    data = {"name": name, "version": version, "key": key}
    await _notify(request, name, Event("model_version_tag", "deleted"), Event("prompt_version_tag", "deleted"), data)
    return {}


ROUTES: list[tuple[str, str, Handler, Access]] = [
    ("POST", "/registered-models/create", create_registered_model, Access.WRITE),
    ("POST", "/registered-models/rename", rename_registered_model, Access.WRITE),
    ("PATCH", "/registered-models/update", update_registered_model, Access.WRITE),
    ("DELETE", "/registered-models/delete", delete_registered_model, Access.WRITE),
    ("GET", "/registered-models/get", get_registered_model, Access.READ),
    ("GET", "/registered-models/search", search_registered_models, Access.READ),
    ("POST", "/registered-models/get-latest-versions", get_latest_versions, Access.READ),
    ("GET", "/registered-models/get-latest-versions", get_latest_versions, Access.READ),
    ("POST", "/registered-models/set-tag", set_registered_model_tag, Access.WRITE),
    ("DELETE", "/registered-models/delete-tag", delete_registered_model_tag, Access.WRITE),
    ("POST", "/registered-models/alias", set_registered_model_alias, Access.WRITE),
    ("DELETE", "/registered-models/alias", delete_registered_model_alias, Access.WRITE),
    ("GET", "/registered-models/alias", get_model_version_by_alias, Access.READ),
    ("POST", "/model-versions/create", create_model_version, Access.WRITE),
    ("PATCH", "/model-versions/update", update_model_version, Access.WRITE),
    ("POST", "/model-versions/transition-stage", transition_stage, Access.WRITE),
    ("DELETE", "/model-versions/delete", delete_model_version, Access.WRITE),
    ("GET", "/model-versions/get", get_model_version, Access.READ),
    ("GET", "/model-versions/search", search_model_versions, Access.READ),
    ("GET", "/model-versions/get-download-uri", get_model_version_download_uri, Access.READ),
    ("POST", "/model-versions/set-tag", set_model_version_tag, Access.WRITE),
    ("DELETE", "/model-versions/delete-tag", delete_model_version_tag, Access.WRITE),
]


def add_routes(app: web.Application) -> None:
    add_json_routes(app, TRACKING_PREFIXES, ROUTES)
