"""Extreme but valid-looking input gets a clear 400, never a 500 or an unbounded answer (on SQLite and
PostgreSQL): stored strings within their columns and MLflow's limits, deep JSON, huge filters, and
run searches whose pages are bounded in bytes as well as in runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Param

from gateway.tracking.store.runs import PAGE_BYTES, RUNS_PER_CHUNK, next_chunk
from gateway.tracking.store.sql import IN_BATCH
from tests.gateway_process import RunningGateway, run_gateway
from tests.postgres_server import store_uri_for

API = "/api/2.0/mlflow"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tracking(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    workdir = tmp_path_factory.mktemp(f"limits-{request.param}")
    with run_gateway(workdir, "--backend-store-uri", store_uri_for(request, workdir)) as running:
        yield running


def post(gateway: RunningGateway, path: str, body: Any) -> requests.Response:
    return requests.post(f"{gateway.url}{API}{path}", json=body, timeout=60)


def new_run(gateway: RunningGateway) -> tuple[str, str]:
    experiment = post(gateway, "/experiments/create", {"name": f"e-{uuid.uuid4().hex[:8]}"}).json()["experiment_id"]
    return experiment, post(gateway, "/runs/create", {"experiment_id": experiment}).json()["run"]["info"]["run_id"]


def assert_refused(response: requests.Response, fragment: str) -> None:
    assert response.status_code == 400, response.text
    assert fragment in response.json()["message"]


def test_names_longer_than_their_columns_are_refused_and_nothing_is_stored(tracking: RunningGateway) -> None:
    name = "n" * 501
    assert_refused(
        post(tracking, "/experiments/create", {"name": name}), "'name' exceeds the maximum length of 500 characters"
    )
    found = requests.get(f"{tracking.url}{API}/experiments/get-by-name", params={"experiment_name": name}, timeout=30)
    assert found.status_code == 404
    experiment, run_id = new_run(tracking)
    assert_refused(
        post(tracking, "/experiments/update", {"experiment_id": experiment, "new_name": name}),
        "'new_name' exceeds the maximum length of 500",
    )
    assert_refused(
        post(tracking, "/runs/create", {"experiment_id": experiment, "run_name": "r" * 251}),
        "'run_name' exceeds the maximum length of 250",
    )
    assert_refused(
        post(tracking, "/runs/create", {"experiment_id": experiment, "user_id": "u" * 257}),
        "'user_id' exceeds the maximum length of 256",
    )
    assert_refused(
        post(tracking, "/runs/update", {"run_id": run_id, "run_name": "r" * 251}),
        "'run_name' exceeds the maximum length of 250",
    )
    assert_refused(
        post(tracking, "/runs/set-tag", {"run_id": run_id, "key": "mlflow.runName", "value": "r" * 251}),
        "'value' exceeds the maximum length of 250",
    )
    for dataset, fragment in (
        ({"name": "d" * 501, "digest": "x"}, "'name' exceeds the maximum length of 500"),
        ({"name": "d", "digest": "x" * 37}, "'digest' exceeds the maximum length of 36"),
    ):
        response = post(tracking, "/runs/log-inputs", {"run_id": run_id, "datasets": [{"dataset": dataset}]})
        assert_refused(response, fragment)
    runs = post(tracking, "/runs/search", {"experiment_ids": [experiment]}).json()["runs"]
    assert len(runs) == 1 and runs[0]["inputs"] == {} and len(runs[0]["info"]["run_name"]) < 250


def test_a_run_search_page_is_bounded_in_bytes_and_paging_returns_every_run(tracking: RunningGateway) -> None:
    """30 runs with 100 params of 6,000 characters each are about 18 MB: more than one page holds."""
    client = MlflowClient(tracking.url)
    experiment = client.create_experiment(f"big-{uuid.uuid4().hex[:8]}")
    created = set()
    for number in range(30):
        run = client.create_run(experiment)
        params = [Param(f"p{i}", f"{number:02d}" + "v" * 5998) for i in range(100)]
        client.log_batch(run.info.run_id, params=params)
        created.add(run.info.run_id)
    first = client.search_runs([experiment], max_results=1000)
    assert 0 < len(first) < 30 and first.token
    seen = [run.info.run_id for run in first]
    token = first.token
    while token:
        page = client.search_runs([experiment], max_results=1000, page_token=token)
        seen += [run.info.run_id for run in page]
        token = page.token
    assert sorted(seen) == sorted(created)


def test_a_search_reads_more_small_runs_at_once_and_fewer_large_ones() -> None:
    assert next_chunk(RUNS_PER_CHUNK, RUNS_PER_CHUNK * 600) == IN_BATCH  # small runs: one statement's worth
    per_run = 100_000
    read = RUNS_PER_CHUNK * per_run
    assert next_chunk(RUNS_PER_CHUNK, read) == (PAGE_BYTES - read) // per_run  # what the page still holds
    assert next_chunk(RUNS_PER_CHUNK, PAGE_BYTES + 1) == 1  # full: the next run only ends the page


@pytest.mark.parametrize("route", ["/runs/create", "/experiments/search"])
def test_json_nested_100000_deep_is_a_400(tracking: RunningGateway, route: str) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = requests.post(
        f"{tracking.url}{API}{route}", data=body, headers={"Content-Type": "application/json"}, timeout=60
    )
    assert_refused(response, "nests too deeply")


def test_a_multipart_request_nested_100000_deep_is_a_400(tracking: RunningGateway) -> None:
    body = b'{"path": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = requests.post(
        f"{tracking.url}/api/2.0/mlflow-artifacts/mpu/create/dir",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 400, response.text


def test_a_filter_of_1200_clauses_is_a_400(tracking: RunningGateway) -> None:
    experiment, _ = new_run(tracking)
    huge = " AND ".join(f"params.p{i} = 'v'" for i in range(1200))
    response = post(tracking, "/runs/search", {"experiment_ids": [experiment], "filter": huge})
    assert_refused(response, "more than 100 comparisons")
    response = post(tracking, "/experiments/search", {"max_results": 10, "filter": huge.replace("params.", "tags.")})
    assert_refused(response, "more than 100 comparisons")
