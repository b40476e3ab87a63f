"""Artifact roots the operator configured are served through the run routes: a `file:` root in no-proxy
mode (a single-machine setup MLflow documents) and the http(s) form of this server's own proxy. A
location a client chooses outside them is still refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pytest
import requests

from tests.gateway_process import RunningGateway, run_gateway

API = "/api/2.0/mlflow"


def post(gateway: RunningGateway, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{gateway.url}{API}{path}", json=body, timeout=30)


def get(gateway: RunningGateway, route: str, **params: str) -> requests.Response:
    return requests.get(f"{gateway.url}{route}", params=params, timeout=30)


def test_a_file_root_in_no_proxy_mode_is_served_through_the_run_routes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data" / "artifacts"
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    with run_gateway(tmp_path / "gw", "--no-serve-artifacts", "--default-artifact-root", root.as_uri()) as gateway:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", gateway.url)
        mlflow.set_tracking_uri(gateway.url)
        mlflow.set_experiment("single-machine")
        source = tmp_path / "model.txt"
        source.write_text("weights")
        with mlflow.start_run() as run:  # the stock client writes to the file root itself
            mlflow.log_artifact(str(source), "sub")
        run_id = run.info.run_id
        assert run.info.artifact_uri.startswith(root.as_uri() + "/")

        listing = get(gateway, f"{API}/artifacts/list", run_id=run_id, path="sub").json()
        assert listing["files"] == [{"path": "sub/model.txt", "is_dir": False, "file_size": 7}]
        file = get(gateway, "/get-artifact", run_uuid=run_id, path="sub/model.txt")
        assert (file.status_code, file.content) == (200, b"weights")
        for bad in ("../x", "sub/../../outside.txt"):
            refused = get(gateway, "/get-artifact", run_uuid=run_id, path=bad)
            assert refused.status_code == 400 and refused.json()["message"].startswith("Invalid path")
        uploaded = requests.post(
            f"{gateway.url}/ajax-api/2.0/mlflow/upload-artifact",
            params={"run_uuid": run_id, "path": "notes.txt"},
            data=b"from the UI",
            timeout=30,
        )
        assert uploaded.status_code == 200, uploaded.text
        stored = Path(run.info.artifact_uri.removeprefix("file://")) / "notes.txt"
        assert stored.read_bytes() == b"from the UI"

        # The artifact proxy API stays off in this mode, and server-info says so.
        assert get(gateway, "/api/2.0/mlflow-artifacts/artifacts", path="x").status_code == 501
        info = get(gateway, "/api/3.0/mlflow/server-info").json()
        assert info["multipart_uploads_enabled"] is False

        inside = post(gateway, "/experiments/create", {"name": "inside", "artifact_location": (root / "x").as_uri()})
        assert inside.status_code == 200, inside.text
        for location in (tmp_path.as_uri(), (root.parent / "artifacts2").as_uri(), f"{root.as_uri()}/../x"):
            refused = post(gateway, "/experiments/create", {"name": f"n{len(location)}", "artifact_location": location})
            assert refused.status_code == 400, location


def test_the_http_form_of_this_servers_own_proxy_is_its_own(tmp_path: Path) -> None:
    public = "http://gateway.internal:5000"
    root = f"{public}/api/2.0/mlflow-artifacts/artifacts/experiments"
    with run_gateway(tmp_path, "--public-url", public, "--default-artifact-root", root) as gateway:
        experiment = post(gateway, "/experiments/create", {"name": "old-style"}).json()["experiment_id"]
        run = post(gateway, "/runs/create", {"experiment_id": experiment}).json()["run"]["info"]
        assert run["artifact_uri"] == f"{root}/{experiment}/{run['run_id']}/artifacts"
        # What the stock client does with such a root: PUT through the proxy at the URI's path.
        stored = f"experiments/{experiment}/{run['run_id']}/artifacts/a.txt"
        put = requests.put(gateway.artifact_url(stored), data=b"bytes", timeout=30)
        assert put.status_code == 200, put.text
        listing = get(gateway, f"{API}/artifacts/list", run_id=run["run_id"]).json()
        assert listing["files"] == [{"path": "a.txt", "is_dir": False, "file_size": 5}]
        assert get(gateway, "/get-artifact", run_id=run["run_id"], path="a.txt").content == b"bytes"


def test_another_servers_http_root_is_not_read_from_this_destination(tmp_path: Path) -> None:
    root = "http://elsewhere.example:5000/api/2.0/mlflow-artifacts/artifacts"
    with run_gateway(tmp_path, "--default-artifact-root", root) as gateway:
        experiment = post(gateway, "/experiments/create", {"name": "theirs"}).json()["experiment_id"]
        run = post(gateway, "/runs/create", {"experiment_id": experiment}).json()["run"]["info"]
        assert get(gateway, f"{API}/artifacts/list", run_id=run["run_id"]).status_code == 501
