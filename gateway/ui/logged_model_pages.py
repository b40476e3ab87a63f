"""MLflow 3 logged models in the UI: an experiment's models, one model (status in words, params,
metrics, tags, the run it came from, its files) and its files in the artifact browser.
The registered versions made from a model come from the registry's pages (`versions_from_logged_model`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web
from yarl import URL

from gateway.http.app_keys import STORE_KEY
from gateway.http.request_values import query_params
from gateway.locations import LOCATIONS_KEY
from gateway.store.errors import NotFound
from gateway.tracking.store import TrackingStore
from gateway.ui.artifact_pages import Place, browse_place, folder_summary
from gateway.ui.registry_pages import versions_from_logged_model
from gateway.ui.rendering import page, render

MODELS_PER_PAGE = 100
STATUS_WORDS = {
    "LOGGED_MODEL_PENDING": "Pending: its files are still being uploaded",
    "LOGGED_MODEL_READY": "Ready",
    "LOGGED_MODEL_UPLOAD_FAILED": "Upload failed",
    "LOGGED_MODEL_STATUS_UNSPECIFIED": "Status not set",
}


def status_words(status: str) -> str:
    """A logged model's status as the page says it (MLflow's enum name is kept in the title)."""
    return STATUS_WORDS.get(status, status)


def model_url(model_id: str) -> str:
    return f"/logged-models/{quote(model_id, safe='')}"


def _store(request: web.Request) -> TrackingStore:
    return request.app[STORE_KEY]


def _place(model: dict[str, Any], request: web.Request) -> Place | None:
    info = model["info"]
    root = request.app[LOCATIONS_KEY].browsable_root(info.get("artifact_uri", ""))
    return None if root is None else Place(root, model_url(info["model_id"]) + "/artifacts", "model files")


@page
async def experiment_models_page(request: web.Request) -> web.StreamResponse:
    store = _store(request)
    experiment = await store.get_experiment(request.match_info["experiment_id"])
    token = query_params(request).get("page_token") or None
    order = [{"field_name": "creation_timestamp", "ascending": False}]
    models, next_token = await store.search_logged_models(
        [experiment["experiment_id"]], None, [], MODELS_PER_PAGE, order, token
    )
    here = URL(f"/experiments/{experiment['experiment_id']}/logged-models")
    return render(
        request,
        "logged_models.html",
        {
            "title": f"Logged models of {experiment['name']}",
            "experiment": experiment,
            "models": [{**model["info"], "status_words": status_words(model["info"]["status"])} for model in models],
            "next_url": str(here.with_query(page_token=next_token)) if next_token else None,
        },
    )


@page
async def logged_model_page(request: web.Request) -> web.StreamResponse:
    store = _store(request)
    model = await store.get_logged_model(request.match_info["model_id"])
    info = model["info"]
    experiment = await store.get_experiment(info["experiment_id"])
    run = None
    if info.get("source_run_id"):
        try:
            run = (await store.get_run(info["source_run_id"]))["info"]
        except NotFound:
            run = {"run_id": info["source_run_id"], "run_name": "(deleted run)", "experiment_id": None}
    tags = {tag["key"]: tag["value"] for tag in info.get("tags", [])}
    place = _place(model, request)
    return render(
        request,
        "logged_model.html",
        {
            "title": info["name"],
            "experiment": experiment,
            "model": info,
            "status_words": status_words(info["status"]),
            "params": model["data"].get("params", []),
            "metrics": model["data"].get("metrics", []),
            "user_tags": {k: v for k, v in tags.items() if not k.startswith("mlflow.")},
            "system_tags": {k: v for k, v in tags.items() if k.startswith("mlflow.")},
            "source_run": run,
            "files": await folder_summary(request, place) if place else None,
            "registered_versions": await versions_from_logged_model(request, info["model_id"]),
        },
    )


@page
async def logged_model_artifacts_page(request: web.Request) -> web.StreamResponse:
    model = await _store(request).get_logged_model(request.match_info["model_id"])
    info = model["info"]
    root = request.app[LOCATIONS_KEY].run_path(info.get("artifact_uri", ""), "")  # 501 when stored elsewhere
    place = Place(root, model_url(info["model_id"]) + "/artifacts", "model files")
    context = {"model": {**info, "url": model_url(info["model_id"])}}
    return await browse_place(request, place, context)
