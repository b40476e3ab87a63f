"""Cross-site writes (finding 7 of the security review): with auth off, the default on loopback, a page on
any web site made the visitor's browser write a run's `model/model.pkl` through `upload-artifact` with
a `text/plain` body (no CORS preflight needed) and start multipart uploads, whose JSON was parsed
whatever its Content-Type. Now every state-changing request a browser sends from another site is
refused (403) before anything is read, and a JSON body must be sent as JSON; MLflow's Python client,
which sends neither `Origin` nor `Sec-Fetch-Site`, is unaffected.
"""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from mlflow import MlflowClient

from tests.gateway_process import RunningGateway

EVIL = "https://evil.example"
# What browsers send for a request a page of another site makes: current ones, one without
# Sec-Fetch-Site, and a sandboxed frame (its Origin is "null").
CROSS_SITE = [
    {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
    {"Origin": EVIL},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "same-site", "Origin": "https://other.localhost"},
]


@pytest.fixture(scope="module")
def run_id(gateway: RunningGateway) -> str:
    client = MlflowClient(gateway.url)
    experiment_id = client.create_experiment(f"csrf-{uuid.uuid4().hex[:8]}")
    return client.create_run(experiment_id).info.run_id


@pytest.mark.parametrize("browser", CROSS_SITE, ids=["sec-fetch-site", "origin", "null-origin", "same-site"])
def test_a_page_on_another_site_cannot_write_a_model(gateway: RunningGateway, run_id: str, browser: dict) -> None:
    url = f"{gateway.url}/ajax-api/2.0/mlflow/upload-artifact"
    params = {"run_uuid": run_id, "path": "model/model.pkl"}
    headers = {**browser, "Content-Type": "text/plain"}
    response = requests.post(url, params=params, data=b"pickled evil", headers=headers, timeout=30)
    assert response.status_code == 403, response.text
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert "Refused a request sent from" in response.json()["message"]
    assert [f.path for f in MlflowClient(gateway.url).list_artifacts(run_id, "model")] == []


@pytest.mark.parametrize("browser", CROSS_SITE, ids=["sec-fetch-site", "origin", "null-origin", "same-site"])
def test_a_page_on_another_site_cannot_start_or_change_uploads(gateway: RunningGateway, browser: dict) -> None:
    body = json.dumps({"path": "big.bin", "num_parts": 2})
    simple = {**browser, "Content-Type": "text/plain"}
    create = requests.post(
        f"{gateway.url}/ajax-api/2.0/mlflow-artifacts/mpu/create/x", data=body, headers=simple, timeout=30
    )
    assert create.status_code == 403, create.text
    for method, path in [
        ("PUT", "/api/2.0/mlflow-artifacts/artifacts/planted.txt"),
        ("DELETE", "/api/2.0/mlflow-artifacts/artifacts/planted.txt"),
        ("POST", "/api/2.0/mlflow/experiments/create"),
    ]:
        response = requests.request(method, f"{gateway.url}{path}", data=b'{"name": "x"}', headers=browser, timeout=30)
        assert response.status_code == 403, (method, path, response.text)
    assert not (gateway.destination / "planted.txt").exists()


def test_a_json_body_must_be_sent_as_json(gateway: RunningGateway) -> None:
    """Without the browser headers (a page cannot remove them), a text/plain body is still not parsed."""
    body = json.dumps({"path": "big.bin", "num_parts": 2})
    url = f"{gateway.url}/api/2.0/mlflow-artifacts/mpu/create/typed"
    untyped = requests.post(url, data=body, headers={"Content-Type": "text/plain"}, timeout=30)
    assert untyped.status_code == 400
    assert "Content-Type must be one of ['application/json']" in untyped.json()["message"]
    assert requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30).status_code == 200


def test_the_same_site_and_non_browser_clients_still_write(gateway: RunningGateway, run_id: str) -> None:
    url = f"{gateway.url}/ajax-api/2.0/mlflow/upload-artifact"
    for headers in ({"Sec-Fetch-Site": "same-origin", "Origin": EVIL}, {"Origin": gateway.url}, {}):
        name = f"ok-{uuid.uuid4().hex[:6]}.txt"
        response = requests.post(url, params={"run_uuid": run_id, "path": name}, data=b"x", headers=headers, timeout=30)
        assert response.status_code == 200, (headers, response.text)
    client = MlflowClient(gateway.url)  # the stock client: neither header
    client.log_text(run_id, "written by the client", "client.txt")
    assert client.download_artifacts(run_id, "client.txt") is not None
