"""`GET /get-artifact?run_id=&path=`: the MLflow UI's download of one file of a run.

As MLflow 3.17's `get_artifact_handler`: the run's artifact root plus `path`, sent as an attachment
with MLflow's Content-Type guess and `X-Content-Type-Options: nosniff` (so a browser never renders
an artifact as a page of this server). It goes through `send_download`, so Range and the
conditional headers work as on the artifact API. Only runs whose root this server stores
(`mlflow-artifacts:/...`) can be served; MLflow would fetch others from the bucket itself.
"""

from __future__ import annotations

from aiohttp import web

from gateway.access import Access, add_route
from gateway.artifact_locations import LOCATIONS_KEY
from gateway.artifacts_api import query_params, repository_of
from gateway.downloads import send_download
from gateway.errors import ApiError
from gateway.store.app_keys import STORE_KEY

GET_ARTIFACT_PATH = "/get-artifact"


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


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", GET_ARTIFACT_PATH, get_artifact, Access.READ)
