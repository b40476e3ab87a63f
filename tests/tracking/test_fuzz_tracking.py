"""Property-based bad input for every tracking route, over real HTTP: never a 500, always JSON errors.

Bodies and query strings mix MLflow's own field names with arbitrary JSON values, and ids of an
experiment and a run that exist with garbage, so handlers are reached past their first check.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.tracking.api import ROUTES
from tests.gateway_process import RunningGateway, run_gateway

FIELDS = [
    "experiment_id", "experiment_ids", "run_id", "run_uuid", "name", "new_name", "key", "value", "timestamp",
    "step", "metrics", "params", "tags", "filter", "filter_string", "max_results", "order_by", "page_token",
    "run_view_type", "lifecycle_stage", "start_time", "end_time", "status", "run_name", "artifact_location",
    "path", "datasets", "models", "model_id", "source_run_id", "model_type", "user_id",
]  # fmt: skip

JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def new_experiment_and_run(gateway: RunningGateway) -> dict[str, str]:
    """A new experiment with one active run: the fuzzers may delete the ones they were given."""
    api = f"{gateway.url}/api/2.0/mlflow"
    experiment = requests.post(f"{api}/experiments/create", json={"name": f"fuzz-{uuid.uuid4().hex}"}, timeout=10)
    experiment_id = experiment.json()["experiment_id"]
    run = requests.post(f"{api}/runs/create", json={"experiment_id": experiment_id}, timeout=10).json()["run"]["info"]
    return {"experiment_id": experiment_id, "run_id": run["run_id"]}


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningGateway, dict[str, str]]]:
    with run_gateway(tmp_path_factory.mktemp("fuzz")) as gateway:
        yield gateway, new_experiment_and_run(gateway)


def known_ids(ids: dict[str, str]) -> st.SearchStrategy[Any]:
    return st.sampled_from([ids["experiment_id"], ids["run_id"], "0", "", "m-0"])


def bodies(ids: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    values = JSON_VALUES | known_ids(ids)
    return st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=12), values, max_size=6)


def check(response: requests.Response, what: str) -> None:
    assert response.status_code < 500, f"{what} -> {response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        error = response.json()
        assert set(error) >= {"error_code", "message"}, f"{what} -> {error}"


@pytest.mark.parametrize(("method", "route"), [(method, path) for method, path, _, _ in ROUTES])
def test_no_input_makes_a_tracking_route_fail_with_500(
    tracking: tuple[RunningGateway, dict[str, str]], method: str, route: str
) -> None:
    gateway, ids = tracking

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(body=bodies(ids), segment=st.text(max_size=20) | known_ids(ids), raw=st.booleans())
    def probe(body: dict[str, Any], segment: str, raw: bool) -> None:
        path = route.replace("{model_id}", quote(segment, safe="") or "x").replace(
            "{tag_key}", quote(segment, safe="") or "x"
        )
        url = f"{gateway.url}/api/2.0/mlflow{path}"
        what = f"{method} {path} {json.dumps(body)[:200]}"
        if method in ("GET", "DELETE"):
            query = {key: value if isinstance(value, str) else json.dumps(value) for key, value in body.items()}
            check(requests.request(method, url, params=query, timeout=10), what)
        elif raw:  # a body that is not a JSON object at all
            check(requests.request(method, url, data=json.dumps(body)[:-1].encode(), timeout=10), what)
        else:
            check(requests.request(method, url, json=body, timeout=10), what)

    probe()


MPU_FIELDS = ["path", "num_parts", "upload_id", "parts", "part_number", "etag", "url"]


@pytest.mark.parametrize("action", ["create", "complete", "abort"])
def test_no_input_makes_a_multipart_route_fail_with_500(
    tracking: tuple[RunningGateway, dict[str, str]], action: str
) -> None:
    gateway, _ = tracking
    values = JSON_VALUES | st.sampled_from(["model.bin", "/home/me/model.bin", "0" * 32, "../x", "a/../../b"])
    parts = st.lists(st.dictionaries(st.sampled_from(["part_number", "etag", "url"]), values, max_size=3), max_size=3)
    mpu_bodies = st.dictionaries(st.sampled_from(MPU_FIELDS) | st.text(max_size=8), values | parts, max_size=5)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(body=mpu_bodies, directory=st.sampled_from(["fuzz", "fuzz/deeper", "..", "%2e%2e", "a//b"]))
    def probe(body: dict[str, Any], directory: str) -> None:
        url = f"{gateway.url}/api/2.0/mlflow-artifacts/mpu/{action}/{directory}"
        check(requests.post(url, json=body, timeout=10), f"POST mpu/{action}/{directory} {json.dumps(body)[:200]}")

    probe()
    listing = requests.get(f"{gateway.url}/api/2.0/mlflow-artifacts/artifacts", timeout=10).json()
    assert all(not entry["path"].startswith("..") for entry in listing.get("files", []))


HUGE_OFFSET = "eyJvZmZzZXQiOiAxMDAwMDAwMDAwMDAwMDAwMDAwMDAwMH0="  # {"offset": 10**25}: overflowed the database's OFFSET


@pytest.mark.parametrize(
    ("method", "route", "fields", "fragment"),
    [
        # Found by tests/http/test_schemathesis.py: a params (or tags) entry that is not an object.
        ("POST", "/logged-models", {"experiment_id": "{experiment_id}", "params": [[None, None]]}, "params"),
        ("POST", "/logged-models", {"experiment_id": "{experiment_id}", "tags": "abc"}, "tags"),
        ("POST", "/logged-models", {"experiment_id": "{experiment_id}", "model_type": {"a": 1}}, "model_type"),
        (
            "POST",
            "/logged-models",
            {"experiment_id": "{experiment_id}", "params": [{"key": "p", "value": "1"}, {"key": "p", "value": "2"}]},
            "given twice",
        ),
        # The same kind, found while fixing it: fields passed to the database unchecked.
        (
            "POST",
            "/runs/log-metric",
            {"run_id": "{run_id}", "key": "k", "value": 1, "timestamp": 1, "model_id": {"x": 1}},
            "model_id",
        ),
        (
            "POST",
            "/runs/log-metric",
            {"run_id": "{run_id}", "key": "k", "value": 1, "timestamp": 1, "dataset_name": [1]},
            "dataset",
        ),
        ("POST", "/runs/log-metric", {"run_id": "{run_id}", "key": "k", "value": 10**400, "timestamp": 1}, "value"),
        ("POST", "/runs/log-inputs", {"run_id": "{run_id}", "datasets": [{"dataset": "x"}]}, "dataset"),
        (
            "POST",
            "/runs/log-inputs",
            {"run_id": "{run_id}", "datasets": [{"dataset": {"name": "n", "digest": "d", "schema": {"a": 1}}}]},
            "schema",
        ),
        ("POST", "/runs/search", {"experiment_ids": ["{experiment_id}"], "page_token": HUGE_OFFSET}, "page_token"),
        ("POST", "/experiments/search", {"page_token": HUGE_OFFSET}, "page_token"),
        (
            "POST",
            "/logged-models/search",
            {"experiment_ids": ["{experiment_id}"], "page_token": HUGE_OFFSET},
            "page_token",
        ),
        (
            "GET",
            "/metrics/get-history",
            {"run_id": "{run_id}", "metric_key": "k", "page_token": HUGE_OFFSET},
            "page_token",
        ),
    ],
)
def test_inputs_that_once_made_a_500_are_refused_with_400(
    tracking: tuple[RunningGateway, dict[str, str]], method: str, route: str, fields: dict[str, Any], fragment: str
) -> None:
    gateway, _ = tracking
    ids = new_experiment_and_run(gateway)  # the module's run may have been deleted by a fuzzer: these must be active
    filled = json.loads(
        json.dumps(fields).replace("{run_id}", ids["run_id"]).replace("{experiment_id}", ids["experiment_id"])
    )
    url = f"{gateway.url}/api/2.0/mlflow{route}"
    if method == "GET":
        response = requests.get(url, params=filled, timeout=10)
    else:  # json.dumps, not requests' json=: 10**400 must reach the server as a JSON number
        body = json.dumps(filled).encode()
        response = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert fragment in response.json()["message"]


def test_a_tag_key_given_twice_to_a_new_logged_model_keeps_the_last_value(
    tracking: tuple[RunningGateway, dict[str, str]],
) -> None:
    """Found by schemathesis: the second insert of one key was a unique-constraint 500."""
    gateway, _ = tracking
    ids = new_experiment_and_run(gateway)  # the module's experiment may have been deleted by a fuzzer
    tags = [{"key": "k", "value": "first"}, {"key": "k", "value": "last"}]
    params = [{"key": "p", "value": "same"}, {"key": "p", "value": "same"}]
    created = requests.post(
        f"{gateway.url}/api/2.0/mlflow/logged-models",
        json={"experiment_id": ids["experiment_id"], "tags": tags, "params": params},
        timeout=10,
    )
    assert created.status_code == 200, created.text
    model = created.json()["model"]
    assert model["info"]["tags"] == [{"key": "k", "value": "last"}]
    assert model["data"]["params"] == [{"key": "p", "value": "same"}]
