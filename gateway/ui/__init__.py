"""The web UI: server-rendered pages for experiments, runs and artifacts, served by the gateway itself.

Which pages a worker serves follows its mode: the tracking pages wherever the tracking API runs,
the artifact browser wherever artifacts are served (at `/` in artifacts-only mode). Every page is
added through `add_route`, so the same auth applies to pages as to the API.
"""

from __future__ import annotations

from aiohttp import web

from gateway.http.access import Access, add_route
from gateway.http.request_values import ANY_PATH
from gateway.ui import artifact_pages
from gateway.ui.rendering import STATIC, STATIC_PREFIX

_STATIC_FILES = {path.name: path for path in STATIC.iterdir() if path.is_file()}
_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}


async def static_file(request: web.Request) -> web.StreamResponse:
    """One of the UI's own files, by exact name (nothing else on disk is reachable)."""
    path = _STATIC_FILES.get(request.match_info["name"])
    if path is None:
        raise web.HTTPNotFound()
    headers = {"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"}
    if path.suffix in _STATIC_TYPES:
        headers["Content-Type"] = _STATIC_TYPES[path.suffix]
    return web.FileResponse(path, headers=headers)


def add_routes(app: web.Application, *, tracking: bool, artifacts: bool) -> None:
    """Add the pages for a worker with the tracking API (`tracking`) and/or served artifacts (`artifacts`)."""
    add_route(app, "GET", STATIC_PREFIX + "/{name}", static_file, Access.READ)
    if tracking:
        # These import the database stack: only where the tracking API runs.
        from gateway.ui import (
            cross_experiment,
            csv_export,
            logged_model_pages,
            registry_pages,
            trace_pages,
            tracking_pages,
        )

        add_route(app, "GET", "/", tracking_pages.experiments_page, Access.READ)
        add_route(app, "GET", "/experiments", tracking_pages.experiments_page, Access.READ)
        add_route(app, "POST", "/experiments", tracking_pages.create_experiment, Access.WRITE)
        add_route(app, "GET", "/experiments/{experiment_id}", tracking_pages.runs_page, Access.READ)
        add_route(app, "POST", "/experiments/{experiment_id}/rename", tracking_pages.rename_experiment, Access.WRITE)
        add_route(app, "POST", "/experiments/{experiment_id}/delete", tracking_pages.delete_experiment, Access.WRITE)
        add_route(app, "POST", "/experiments/{experiment_id}/restore", tracking_pages.restore_experiment, Access.WRITE)
        add_route(app, "GET", "/experiments/{experiment_id}/runs/{run_id}", tracking_pages.run_page, Access.READ)
        add_route(app, "GET", "/compare-runs", tracking_pages.compare_page, Access.READ)
        add_route(app, "GET", "/runs", cross_experiment.cross_experiment_page, Access.READ)
        add_route(app, "GET", "/runs.csv", csv_export.runs_csv, Access.READ)
        registry_pages.add_routes(app)
        add_route(app, "GET", "/experiments/{experiment_id}/traces", trace_pages.traces_page, Access.READ)
        add_route(app, "GET", "/experiments/{experiment_id}/traces/{trace_id}", trace_pages.trace_page, Access.READ)
        run_artifacts = "/experiments/{experiment_id}/runs/{run_id}/artifacts"
        add_route(app, "GET", run_artifacts, artifact_pages.run_artifacts_page, Access.READ)
        add_route(app, "GET", f"{run_artifacts}/{ANY_PATH}", artifact_pages.run_artifacts_page, Access.READ)
        # logged models (MLflow 3)
        models = logged_model_pages
        add_route(app, "GET", "/experiments/{experiment_id}/logged-models", models.experiment_models_page, Access.READ)
        add_route(app, "GET", "/logged-models/{model_id}", models.logged_model_page, Access.READ)
        model_files = "/logged-models/{model_id}/artifacts"
        add_route(app, "GET", model_files, models.logged_model_artifacts_page, Access.READ)
        add_route(app, "GET", f"{model_files}/{ANY_PATH}", models.logged_model_artifacts_page, Access.READ)
    if artifacts:
        if not tracking:
            add_route(app, "GET", "/", artifact_pages.browse_page, Access.READ)
        add_route(app, "GET", "/browse", artifact_pages.browse_page, Access.READ)
        add_route(app, "GET", f"/browse/{ANY_PATH}", artifact_pages.browse_page, Access.READ)
