"""`GET /model-versions/get-artifact?name=&version=&path=`: the MLflow UI's download of one file of a
registered version, from where the version's files really are, with /get-artifact's headers, Range,
and a clear 4xx for every bad input."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient

from tests.gateway_process import RunningGateway, run_gateway
from tests.tracking.test_mlflow_ui_routes import mlflow_download_headers

FILES = {"MLmodel": b"artifact_path: model\n", "weights.bin": os.urandom(300_000), "données.csv": b"a\n1\n"}


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with run_gateway(tmp_path_factory.mktemp("version-artifact")) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def registered(tracking: RunningGateway, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A model whose version 1 is a run's `model/` folder, logged and registered by the stock client."""
    source = tmp_path_factory.mktemp("model-files")
    for name, data in FILES.items():
        (source / name).write_bytes(data)
    name = f"files-{os.urandom(4).hex()}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        client = MlflowClient(tracking.url, tracking.url)
        experiment = client.create_experiment(name)
        run = client.create_run(experiment)
        mlflow.set_tracking_uri(tracking.url)
        client.log_artifacts(run.info.run_id, str(source), "model")
        client.create_registered_model(name)
        client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id)
        mlflow.set_tracking_uri(None)
    return name


@pytest.mark.parametrize("file", FILES)
def test_a_versions_file_is_sent_with_get_artifacts_headers(
    tracking: RunningGateway, registered: str, file: str
) -> None:
    response = requests.get(
        f"{tracking.url}/model-versions/get-artifact",
        params={"name": registered, "version": "1", "path": file},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.content == FILES[file]
    served = {key: response.headers[key] for key in ("Content-Type", "Content-Disposition", "X-Content-Type-Options")}
    assert served == mlflow_download_headers(file)
    assert response.headers["Content-Length"] == str(len(FILES[file]))


def test_range_and_conditional_requests_work(tracking: RunningGateway, registered: str) -> None:
    url = f"{tracking.url}/model-versions/get-artifact"
    params = {"name": registered, "version": "1", "path": "weights.bin"}
    whole = requests.get(url, params=params, timeout=30)
    part = requests.get(url, params=params, headers={"Range": "bytes=100-199"}, timeout=30)
    assert (part.status_code, part.content) == (206, FILES["weights.bin"][100:200])
    again = requests.get(url, params=params, headers={"If-None-Match": whole.headers["ETag"]}, timeout=30)
    assert again.status_code == 304


@pytest.mark.parametrize(
    ("query", "status", "code", "message"),
    [
        ("version=1&path=MLmodel", 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'"),
        ("name={m}&path=MLmodel", 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'version'"),
        ("name={m}&version=1", 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'path'"),
        (
            "name=nobody&version=1&path=MLmodel",
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "Model Version (name=nobody, version=1) not found",
        ),
        (
            "name={m}&version=7&path=MLmodel",
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "Model Version (name={m}, version=7) not found",
        ),
        ("name={m}&version=one&path=MLmodel", 400, "INVALID_PARAMETER_VALUE", None),
        ("name={m}&version=1&path=nothing.bin", 404, "RESOURCE_DOES_NOT_EXIST", None),
        ("name={m}&version=1&path=..%2F..%2Fother", 400, "INVALID_PARAMETER_VALUE", "Invalid path: '..' segment"),
        ("name={m}&version=1&path=%2Fetc%2Fpasswd", 400, "INVALID_PARAMETER_VALUE", "Invalid path: absolute path"),
    ],
)
def test_bad_inputs_are_clear_4xx(
    tracking: RunningGateway, registered: str, query: str, status: int, code: str, message: str | None
) -> None:
    got, headers, body = tracking.raw_request("GET", "/model-versions/get-artifact?" + query.format(m=registered))
    assert headers["Content-Type"].startswith("application/json")
    answer = json.loads(body)
    assert (got, answer["error_code"]) == (status, code), answer
    if message is not None:
        assert answer["message"].split(" (request")[0] == message.format(m=registered)


def test_a_version_stored_elsewhere_is_501(tmp_path: Path) -> None:
    with run_gateway(tmp_path, "--no-serve-artifacts", "--default-artifact-root", "s3://bucket/root") as gateway:
        api = f"{gateway.url}/api/2.0/mlflow"
        run_id = requests.post(f"{api}/runs/create", json={"experiment_id": "0"}, timeout=10).json()["run"]["info"][
            "run_id"
        ]
        requests.post(f"{api}/registered-models/create", json={"name": "m"}, timeout=10).raise_for_status()
        created = requests.post(
            f"{api}/model-versions/create", json={"name": "m", "source": f"runs:/{run_id}/model"}, timeout=10
        )
        assert created.status_code == 200, created.text
        status, _, body = gateway.raw_request("GET", "/model-versions/get-artifact?name=m&version=1&path=MLmodel")
        assert status == 501
        assert json.loads(body)["message"].startswith(
            "This server does not serve artifacts stored at 's3://bucket/root"
        )
