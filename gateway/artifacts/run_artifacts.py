"""MLflow's UI-side artifact routes, which scripts call too.

`GET /get-artifact?run_id=&path=`: the MLflow UI's download of one file of a run.

As MLflow 3.17's `get_artifact_handler`: the run's artifact root plus `path`, sent as an attachment
with MLflow's Content-Type guess and `X-Content-Type-Options: nosniff` (so a browser never renders
an artifact as a page of this server). It goes through `send_download`, so Range and the
conditional headers work as on the artifact API. Only runs whose root this server stores
(`mlflow-artifacts:/...`) can be served; MLflow would fetch others from the bucket itself.

`GET /model-versions/get-artifact?name=&version=&path=`: the same for one file of a registered
model version, below the location its files really are (`get-download-uri`'s answer).

`GET /ajax-api/2.0/mlflow/logged-models/<id>/artifacts/files?artifact_file_path=`: the same for a
logged model's files; `GET .../logged-models/<id>/artifacts/directories?artifact_directory_path=`
(under /api and /ajax-api, as MLflow): one level of a logged model's files, as `artifacts/list` lists
a run's. `POST /ajax-api/2.0/mlflow/upload-artifact?run_uuid=&path=`: a small file
(at most 10 MiB, MLflow's limit, or `--max-upload-size-mib` where tighter; 413 past it) uploaded
into a run, streamed to storage like any upload.
"""

from __future__ import annotations

from aiohttp import web

from gateway.artifacts.api import body_chunks
from gateway.artifacts.downloads import send_download
from gateway.artifacts.upload_limits import UPLOAD_SLOTS_KEY, SizeLimit
from gateway.http.access import Access, add_route
from gateway.http.app_keys import REGISTRY_STORE_KEY, STORE_KEY
from gateway.http.errors import ApiError
from gateway.http.prefixes import TRACKING_PREFIXES
from gateway.http.request_values import parse_path, query_params, repository_of
from gateway.locations import LOCATIONS_KEY
from gateway.logs import audit

GET_ARTIFACT_PATH = "/get-artifact"
MODEL_VERSION_ARTIFACT_PATH = "/model-versions/get-artifact"
LOGGED_MODEL_FILES_PATH = "/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files"
LOGGED_MODEL_DIRECTORIES_PATH = "/logged-models/{model_id}/artifacts/directories"
"""Below each of the tracking prefixes."""
UPLOAD_ARTIFACT_PATH = "/ajax-api/2.0/mlflow/upload-artifact"


async def get_artifact(request: web.Request) -> web.StreamResponse:
    query = query_params(request)
    run_id = query.get("run_id") or query.get("run_uuid")
    if not run_id:
        raise ApiError.invalid("Missing value for required parameter 'run_id'")
    relative = query.get("path")
    if not relative:
        raise ApiError.invalid("Missing value for required parameter 'path'")
    run = await request.app[STORE_KEY].get_run(run_id)
    path = request.app[LOCATIONS_KEY].run_path(run["info"]["artifact_uri"], relative)
    async with await repository_of(request).get(path) as download:
        return await send_download(request, download)


async def get_model_version_artifact(request: web.Request) -> web.StreamResponse:
    query = query_params(request)
    for required in ("name", "version", "path"):
        if not query.get(required):
            raise ApiError.invalid(f"Missing value for required parameter '{required}'")
    relative = query["path"]
    parse_path(relative)  # a bad path is refused before the version is looked up
    location = await request.app[REGISTRY_STORE_KEY].get_model_version_download_uri(query["name"], query["version"])
    path = request.app[LOCATIONS_KEY].run_path(location, relative)
    async with await repository_of(request).get(path) as download:
        return await send_download(request, download)


async def get_logged_model_artifact(request: web.Request) -> web.StreamResponse:
    relative = query_params(request).get("artifact_file_path")
    if not relative:
        raise ApiError(400, "BAD_REQUEST", 'Request must include the "artifact_file_path" query parameter.')
    model = await request.app[STORE_KEY].get_logged_model(request.match_info["model_id"])
    path = request.app[LOCATIONS_KEY].run_path(model["info"]["artifact_uri"], relative)
    async with await repository_of(request).get(path) as download:
        return await send_download(request, download)


async def list_logged_model_artifacts(request: web.Request) -> web.Response:
    """MLflow's `ListLoggedModelArtifacts`: `{"root_uri", "files": [{"path", "is_dir", "file_size"}]}`,
    paths relative to the model's artifact root; `files` left out when there are none (a missing
    directory too). A deleted model is not found, as in MLflow."""
    relative = query_params(request).get("artifact_directory_path") or ""
    parse_path(relative, allow_trailing_slash=True)  # '/etc' is refused, not read as 'etc'
    model = await request.app[STORE_KEY].get_logged_model(request.match_info["model_id"])
    return web.json_response(await request.app[LOCATIONS_KEY].list_run(model["info"]["artifact_uri"], relative))


UPLOAD_LIMIT = SizeLimit(
    10 << 20,
    # MLflow's own words first: scripts written against MLflow may look for them.
    "Artifact size is too large. Max size is 10MB. The MLflow UI's upload-artifact route takes at most"
    " 10 MiB, as MLflow's does; log a larger file through the artifact API (mlflow.log_artifact).",
)


async def upload_artifact(request: web.Request) -> web.Response:
    query = query_params(request)
    run_id = query.get("run_uuid")
    if not run_id:
        raise ApiError.invalid("Request must specify run_uuid.")
    relative = query.get("path")
    if not relative:
        raise ApiError.invalid("Request must specify path.")
    parse_path(relative)  # a bad path is refused before the body is looked at, as MLflow does
    body = body_chunks(request, UPLOAD_LIMIT)  # refuses a declared oversize here, before the run is read
    if not request.content_length and not request.body_exists:
        raise ApiError.invalid("Request must specify data.")
    run = await request.app[STORE_KEY].get_run(run_id)
    path = request.app[LOCATIONS_KEY].run_path(run["info"]["artifact_uri"], relative)
    with request.app[UPLOAD_SLOTS_KEY].hold():  # counted by --max-concurrent-uploads like every upload
        info = await repository_of(request).put(path, body, content_length=request.content_length)
    audit(request, "put", str(path), size=info.size, sha256=info.sha256)
    return web.json_response({})


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", GET_ARTIFACT_PATH, get_artifact, Access.READ)
    add_route(app, "GET", MODEL_VERSION_ARTIFACT_PATH, get_model_version_artifact, Access.READ)
    add_route(app, "GET", LOGGED_MODEL_FILES_PATH, get_logged_model_artifact, Access.READ)
    for prefix in TRACKING_PREFIXES:
        add_route(app, "GET", prefix + LOGGED_MODEL_DIRECTORIES_PATH, list_logged_model_artifacts, Access.READ)
    add_route(app, "POST", UPLOAD_ARTIFACT_PATH, upload_artifact, Access.WRITE)
