"""MLflow's UI-side routes that scripts use too: /get-artifact, a logged model's files and
/ajax-api/2.0/mlflow/upload-artifact, with MLflow's headers and clear refusals."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.gateway_process import RunningGateway, run_gateway

MIB = 1 << 20


# -- GET /get-artifact: the MLflow UI's download of one file of a run -------------------------------


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """A proxied-mode gateway (tracking API and artifacts) on local disk."""
    with run_gateway(tmp_path_factory.mktemp("get-artifact")) as gateway:
        yield gateway


RUN_FILES = {
    "MLmodel": b"artifact_path: model\n",
    "metrics.json": b'{"accuracy": 0.91}',
    "plot.png": b"\x89PNG\r\n\x1a\n" + os.urandom(100),
    "page.html": b"<script>alert('not on our origin')</script>",
    "données ü.csv": b"a,b\n1,2\n",
    "weights.bin": os.urandom(2 * MIB + 3),
}


@pytest.fixture(scope="module")
def logged_run(tracking: RunningGateway, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A run whose artifacts the stock client logged under outputs/ through the gateway."""
    import mlflow

    source = tmp_path_factory.mktemp("run-files")
    for name, data in RUN_FILES.items():
        (source / name).write_bytes(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", tracking.url)
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        # An explicit experiment: mlflow keeps the active experiment of earlier tests in this process.
        experiment_id = mlflow.MlflowClient(tracking.url).create_experiment(f"ui-routes-{os.urandom(4).hex()}")
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_artifacts(str(source), "outputs")
        mlflow.set_tracking_uri(None)
    return str(run.info.run_id)


def mlflow_download_headers(name: str) -> dict[str, str]:
    """The headers MLflow 3.17's own handler puts on a download of `name`."""
    from flask import Response

    with warnings.catch_warnings():  # importing MLflow's server loads its SQLAlchemy store, which warns
        warnings.simplefilter("ignore")
        from mlflow.server.handlers import _content_disposition_attachment, _response_with_file_attachment_headers

    response = Response()
    response.headers["Content-Disposition"] = _content_disposition_attachment(name)  # as _send_artifact does
    answered = _response_with_file_attachment_headers(f"/tmp/{name}", response)
    return {key: answered.headers[key] for key in ("Content-Type", "Content-Disposition", "X-Content-Type-Options")}


@pytest.mark.parametrize("name", RUN_FILES)
def test_get_artifact_sends_the_bytes_with_mlflows_headers(
    tracking: RunningGateway, logged_run: str, name: str
) -> None:
    response = requests.get(
        f"{tracking.url}/get-artifact", params={"run_id": logged_run, "path": f"outputs/{name}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.content == RUN_FILES[name]
    served = {key: response.headers[key] for key in ("Content-Type", "Content-Disposition", "X-Content-Type-Options")}
    assert served == mlflow_download_headers(name)


def test_get_artifact_takes_run_uuid_and_honours_range(tracking: RunningGateway, logged_run: str) -> None:
    url = f"{tracking.url}/get-artifact"
    params = {"run_uuid": logged_run, "path": "outputs/weights.bin"}
    whole = requests.get(url, params=params, timeout=30)
    part = requests.get(url, params=params, headers={"Range": "bytes=10-19"}, timeout=30)
    assert part.status_code == 206 and part.content == RUN_FILES["weights.bin"][10:20]
    again = requests.get(url, params=params, headers={"If-None-Match": whole.headers["ETag"]}, timeout=30)
    assert again.status_code == 304


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("run_id=0123456789abcdef&path=x", 404, "Run with id=0123456789abcdef not found"),
        ("run_id={run}", 400, "Missing value for required parameter 'path'"),
        ("path=outputs/MLmodel", 400, "Missing value for required parameter 'run_id'"),
        ("run_id={run}&path=outputs/nothing.bin", 404, "No such artifact: '{root}/outputs/nothing.bin'"),
        ("run_id={run}&path=outputs", 400, "Artifact path refers to a directory, not a file: '{root}/outputs'"),
        ("run_id={run}&path=../../other/artifacts/x", 400, "Invalid path: '..' segment"),
        ("run_id={run}&path=%2Fetc%2Fpasswd", 400, "Invalid path: absolute path"),
        ("run_id={run}&path=outputs%2F%252e%252e%2Fx", 400, "Invalid path: percent-escape left after decoding"),
    ],
)
def test_get_artifact_refusals_are_clear(
    tracking: RunningGateway, logged_run: str, query: str, status: int, message: str
) -> None:
    run = requests.get(f"{tracking.url}/api/2.0/mlflow/runs/get", params={"run_id": logged_run}, timeout=10).json()
    root = run["run"]["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
    got, headers, body = tracking.raw_request("GET", "/get-artifact?" + query.format(run=logged_run))
    assert headers["Content-Type"].startswith("application/json")
    assert (got, json.loads(body)["message"].split(" (")[0]) == (status, message.format(root=root))


def test_get_artifact_without_served_artifacts_is_501_and_absent_in_artifacts_only_mode(tmp_path: Path) -> None:
    with run_gateway(tmp_path / "a", "--no-serve-artifacts", "--default-artifact-root", "s3://bucket/root") as gw:
        run_id = requests.post(f"{gw.url}/api/2.0/mlflow/runs/create", json={"experiment_id": "0"}, timeout=10).json()[
            "run"
        ]["info"]["run_id"]
        status, _, body = gw.raw_request("GET", f"/get-artifact?run_id={run_id}&path=model.pkl")
        assert status == 501
        assert json.loads(body)["message"].startswith(
            "This server does not serve artifacts stored at 's3://bucket/root"
        )
    with run_gateway(tmp_path / "b", "--artifacts-only") as gw:
        status, _, body = gw.raw_request("GET", "/get-artifact?run_id=x&path=y")
        assert (status, json.loads(body)["error_code"]) == (404, "ENDPOINT_NOT_FOUND")


# -- a logged model's files, and small uploads into a run (MLflow's /ajax-api routes) ---------------


def test_logged_model_files_download_like_get_artifact(tracking: RunningGateway) -> None:
    import mlflow

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", tracking.url)
        experiment_id = mlflow.MlflowClient(tracking.url).create_experiment(f"models-{os.urandom(4).hex()}")
        model = mlflow.initialize_logged_model(name="tiny", experiment_id=experiment_id)
        mlflow.set_tracking_uri(None)
    stored = model.artifact_location.removeprefix("mlflow-artifacts:/")
    requests.put(
        f"{tracking.url}/api/2.0/mlflow-artifacts/artifacts/{stored}/MLmodel", data=b"flavors: {}\n", timeout=10
    ).raise_for_status()
    url = f"{tracking.url}/ajax-api/2.0/mlflow/logged-models/{model.model_id}/artifacts/files"
    got = requests.get(url, params={"artifact_file_path": "MLmodel"}, timeout=10)
    assert got.status_code == 200 and got.content == b"flavors: {}\n"
    served = {key: got.headers[key] for key in ("Content-Type", "Content-Disposition", "X-Content-Type-Options")}
    assert served == mlflow_download_headers("MLmodel")
    for params, status, message in (
        ({}, 400, 'Request must include the "artifact_file_path" query parameter.'),
        ({"artifact_file_path": "../../x"}, 400, "Invalid path: '..' segment"),
        ({"artifact_file_path": "absent"}, 404, "No such artifact"),
    ):
        refused = requests.get(url, params=params, timeout=10)
        assert (refused.status_code, refused.json()["message"].startswith(message)) == (status, True), refused.text
    unknown = requests.get(
        url.replace(model.model_id, "m-" + "0" * 32), params={"artifact_file_path": "MLmodel"}, timeout=10
    )
    assert unknown.status_code == 404


def test_upload_artifact_stores_a_small_file_in_the_run(tracking: RunningGateway, logged_run: str) -> None:
    url = f"{tracking.url}/ajax-api/2.0/mlflow/upload-artifact"
    sent = requests.post(
        url, params={"run_uuid": logged_run, "path": "notes/from-ui.txt"}, data=b"typed in the UI", timeout=10
    )
    assert (sent.status_code, sent.json()) == (200, {})
    back = requests.get(
        f"{tracking.url}/get-artifact", params={"run_id": logged_run, "path": "notes/from-ui.txt"}, timeout=10
    )
    assert back.content == b"typed in the UI"
    listing = requests.get(
        f"{tracking.url}/api/2.0/mlflow/artifacts/list", params={"run_id": logged_run, "path": "notes"}, timeout=10
    ).json()
    assert [f["path"] for f in listing["files"]] == ["notes/from-ui.txt"]


def test_upload_artifact_refusals_store_nothing(tracking: RunningGateway, logged_run: str) -> None:
    """MLflow's refusals, except that a body past the 10 MiB is 413 (MLflow: 400) and says what to do
    instead; the streamed one is cut mid-way and leaves no partial file behind."""
    url = f"{tracking.url}/ajax-api/2.0/mlflow/upload-artifact"
    too_large = (
        "Artifact size is too large. Max size is 10MB. The MLflow UI's upload-artifact route takes at most"
        " 10 MiB, as MLflow's does; log a larger file through the artifact API (mlflow.log_artifact)."
    )

    def chunked(total: int) -> Iterator[bytes]:  # no Content-Length: the limit must bite while streaming
        for _ in range(total // MIB):
            yield b"x" * MIB

    for params, body, status, message in (
        ({"path": "a.txt"}, b"x", 400, "Request must specify run_uuid."),
        ({"run_uuid": logged_run}, b"x", 400, "Request must specify path."),
        ({"run_uuid": logged_run, "path": "empty.txt"}, b"", 400, "Request must specify data."),
        ({"run_uuid": logged_run, "path": "big.bin"}, b"x" * (10 * MIB + 1), 413, too_large),
        ({"run_uuid": logged_run, "path": "streamed.bin"}, chunked(12 * MIB), 413, too_large),
        ({"run_uuid": logged_run, "path": "../escape.txt"}, b"x", 400, "Invalid path: '..' segment"),
        ({"run_uuid": "0" * 32, "path": "a.txt"}, b"x", 404, "Run with id=" + "0" * 32 + " not found"),
    ):
        refused = requests.post(url, params=params, data=body, timeout=30)
        assert refused.status_code == status and refused.json()["message"].startswith(message), (params, refused.text)
    for name in ("empty.txt", "big.bin", "streamed.bin", "a.txt"):
        missing = requests.get(f"{tracking.url}/get-artifact", params={"run_id": logged_run, "path": name}, timeout=10)
        assert missing.status_code == 404, name
    assert list((tracking.destination / ".artifact-gateway-staging").iterdir()) == []
    reader_only = requests.get(url, timeout=10)
    assert reader_only.status_code == 405
