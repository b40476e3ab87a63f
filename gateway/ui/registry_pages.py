"""UI pages of the model registry: the models (search by name and tag), one model's versions, one
version's files (one zip), and the versions registered from a run (shown on its page).

The client's links `#/models/<name>` and `#/models/<name>/versions/<v>` open these pages (ui.js).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from yarl import URL

from gateway.http.access import Access, add_route
from gateway.http.app_keys import REGISTRY_STORE_KEY
from gateway.http.request_values import query_params, whole_number
from gateway.registry.store import RegistryStore
from gateway.store.errors import InvalidValue
from gateway.store.pages import offset_token
from gateway.ui.artifact_pages import stored_folder
from gateway.ui.rendering import page, render

MODELS_PER_PAGE = 100
VERSIONS_SHOWN = 1000
RUN_VERSIONS_SHOWN = 100
MAX_PAGE = 1_000_000


def _store(request: web.Request) -> RegistryStore:
    return request.app[REGISTRY_STORE_KEY]


def _quoted(text: str) -> str:
    """`text` as a filter's string literal: a quote in it is doubled, so it cannot end the literal early."""
    return "'" + text.replace("'", "''") + "'"


def models_filter(name: str, tag: str) -> str | None:
    """The registry filter for a name substring and a `key=value` (or just `key`) tag search."""
    clauses = []
    if name:
        clauses.append(f"name ILIKE {_quoted('%' + name + '%')}")
    if tag:
        key, has_value, value = tag.partition("=")
        key = key.strip()
        if not key or "`" in key:
            raise InvalidValue("Search tags as key=value (or a key alone)")
        clauses.append(f"tags.`{key}` = {_quoted(value.strip())}" if has_value else f"tags.`{key}` LIKE '%'")
    return " AND ".join(clauses) or None


def _by_key(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {item["key"]: item["value"] for item in items or []}


@page
async def models_page(request: web.Request) -> web.StreamResponse:
    query = query_params(request)
    name, tag = query.get("q", "").strip(), query.get("tag", "").strip()
    number = whole_number(query.get("page") or "1", "page", MAX_PAGE)
    models: list[dict[str, Any]] = []
    problem, token = None, None
    try:
        found, token = await _store(request).search_registered_models(
            models_filter(name, tag), MODELS_PER_PAGE, ["name ASC"], _offset((number - 1) * MODELS_PER_PAGE)
        )
        models = [{**model, "tag_map": _by_key(model.get("tags"))} for model in found]
    except InvalidValue as exc:
        problem = exc.message
    here = URL("/models").with_query({"q": name, "tag": tag})
    return render(
        request,
        "models.html",
        {
            "title": "Models",
            "models": models,
            "search": name,
            "tag": tag,
            "problem": problem,
            "page": number,
            "previous_url": str(here.update_query(page=number - 1)) if number > 1 else None,
            "next_url": str(here.update_query(page=number + 1)) if token else None,
        },
        status=400 if problem else 200,
    )


def _offset(offset: int) -> str | None:
    return offset_token(offset) if offset else None


@page
async def model_page(request: web.Request) -> web.StreamResponse:
    store = _store(request)
    name = request.match_info["name"]
    model = await store.get_registered_model(name)
    versions, _ = await store.search_model_versions(
        f"name = {_quoted(name)}", VERSIONS_SHOWN, ["version_number DESC"], None
    )
    links = await store.version_links(name)
    return render(
        request,
        "model.html",
        {
            "title": name,
            "model": model,
            "tags": _by_key(model.get("tags")),
            "aliases": model.get("aliases", []),
            "versions": [{**v, "tag_map": _by_key(v.get("tags")), "links": links.get(v["version"])} for v in versions],
        },
    )


@page
async def version_page(request: web.Request) -> web.StreamResponse:
    store = _store(request)
    name, number = request.match_info["name"], request.match_info["version"]
    version = await store.get_model_version(name, number)
    location = await store.get_model_version_download_uri(name, number)
    links = (await store.version_links(name)).get(version["version"])
    files = await stored_folder(request, location)
    return render(
        request,
        "model_version.html",
        {
            "title": f"{name} version {version['version']}",
            "name": name,
            "version": version,
            "tags": _by_key(version.get("tags")),
            "links": links,
            "location": location,
            "files": files,
            "file_url": str(URL("/model-versions/get-artifact").with_query(name=name, version=version["version"])),
        },
    )


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/models", models_page, Access.READ)
    add_route(app, "GET", "/models/{name}", model_page, Access.READ)
    add_route(app, "GET", "/models/{name}/versions/{version}", version_page, Access.READ)


async def versions_from_run(request: web.Request, run_id: str) -> list[dict[str, Any]]:
    """The model versions registered from `run_id`, newest first, for the run's page."""
    return await _versions_matching(request, f"run_id = {_quoted(run_id)}")


async def versions_from_logged_model(request: web.Request, model_id: str) -> list[dict[str, Any]]:
    """The model versions registered from logged model `model_id` (source `models:/<id>`), newest first."""
    return await _versions_matching(request, f"source_path = {_quoted('models:/' + model_id)}")


async def _versions_matching(request: web.Request, filter_string: str) -> list[dict[str, Any]]:
    if REGISTRY_STORE_KEY not in request.app:
        return []
    found, _ = await _store(request).search_model_versions(
        filter_string, RUN_VERSIONS_SHOWN, ["last_updated_timestamp DESC"], None
    )
    return found
