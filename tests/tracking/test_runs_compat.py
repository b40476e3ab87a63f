"""Runs, params, tags and metrics as MLflow 3.17 checks them: names, long values, required fields,
batches, and MLflow's UI routes for sampled histories and datasets (on SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Param

from tests.gateway_process import RunningGateway, run_gateway
from tests.postgres_server import store_uri_for

API = "/api/2.0/mlflow"
AJAX = "/ajax-api/2.0/mlflow"
MAX = sys.float_info.max
SEE_DOCS = "See the API docs for more information about request parameters."


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tracking(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    workdir = tmp_path_factory.mktemp(f"runs-{request.param}")
    with run_gateway(workdir, "--backend-store-uri", store_uri_for(request, workdir)) as running:
        yield running


def post(gateway: RunningGateway, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{gateway.url}{API}{path}", json=body, timeout=30)


def new_run(gateway: RunningGateway) -> tuple[str, str]:
    experiment = post(gateway, "/experiments/create", {"name": f"e-{uuid.uuid4().hex[:8]}"}).json()["experiment_id"]
    run = post(gateway, "/runs/create", {"experiment_id": experiment, "start_time": 1}).json()["run"]["info"]["run_id"]
    return experiment, run


def assert_400(response: requests.Response, message: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["message"] == message
    assert (body["sqlstate"], body["error_class"]) == ("KAM00", "INVALID_PARAMETER_VALUE")


def run_data(gateway: RunningGateway, run_id: str) -> dict[str, Any]:
    response = requests.get(f"{gateway.url}{API}/runs/get", params={"run_id": run_id}, timeout=30)
    return dict(response.json()["run"]["data"])


def test_long_param_and_tag_values_are_cut_to_mlflows_limits(tracking: RunningGateway) -> None:
    client = MlflowClient(tracking.url)
    _, run_id = new_run(tracking)
    client.log_param(run_id, "long", "p" * 7000)
    client.set_tag(run_id, "long", "t" * 9000)
    client.log_batch(run_id, params=[Param("batch", "b" * 6001)])
    data = client.get_run(run_id).data
    assert (len(data.params["long"]), len(data.params["batch"]), len(data.tags["long"])) == (6000, 6000, 8000)


def test_without_truncation_a_long_value_is_refused(tmp_path: Path) -> None:
    with run_gateway(tmp_path, "--no-truncate-long-values") as gateway:
        _, run_id = new_run(gateway)
        response = post(gateway, "/runs/log-parameter", {"run_id": run_id, "key": "k", "value": "v" * 6001})
        assert_400(response, "'Param value' exceeds the maximum length of 6000 characters")
        response = post(gateway, "/runs/log-batch", {"run_id": run_id, "tags": [{"key": "k", "value": "v" * 8001}]})
        assert_400(response, "'tags[0].value' exceeds the maximum length of 8000 characters")
        assert run_data(gateway, run_id).get("params") is None


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/runs/log-metric",
            {"key": "a#b", "value": 1.0, "timestamp": 1},
            "Invalid value \"a#b\" for parameter 'name' supplied: Names may only contain alphanumerics, "
            "underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).",
        ),
        (
            "/runs/log-parameter",
            {"key": "../x", "value": "v"},
            "Invalid value \"../x\" for parameter 'key' supplied: Names may be treated as files in certain cases, "
            "and must not resolve to other names when treated as such. This name would resolve to '../x'",
        ),
        (
            "/runs/log-metric",
            {"key": "m", "value": 1.0},
            f"Missing value for required parameter 'timestamp'. {SEE_DOCS}",
        ),
        (
            "/runs/log-batch",
            {"metrics": [{"key": "m", "value": 1.0, "timestamp": 1}, {"key": "n", "value": 2.0}]},
            f"Missing value for required parameter 'metrics[1].timestamp'. {SEE_DOCS}",
        ),
        (  # the batch checks each distinct key once: a bad key after good ones is still found, in its place
            "/runs/log-batch",
            {"metrics": [{"key": k, "value": 1.0, "timestamp": 1} for k in ("m", "m", "a#b", "m")]},
            "Invalid value \"a#b\" for parameter 'metrics[2].name' supplied: Names may only contain alphanumerics, "
            "underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).",
        ),
        (
            "/runs/log-batch",
            {"metrics": [{"key": "m", "value": 1.0, "timestamp": 1}, {"key": ["m"], "value": 1.0, "timestamp": 1}]},
            "Invalid value [\"m\"] for parameter 'metrics[1].key' supplied:  Hint: Value was of type 'list'. "
            + SEE_DOCS,
        ),
        (
            "/runs/log-batch",
            {"params": [{"key": "dup", "value": "1"}, {"key": "dup", "value": "1"}]},
            "Duplicate parameter keys have been submitted: ['dup']. Please ensure the request contains only one "
            "param value per param key.",
        ),
        (
            "/runs/log-batch",
            {"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]},
            "A batch logging request can contain at most 100 params. Got 101 params. Please split up params "
            "across multiple requests and try again.",
        ),
        (
            "/runs/log-metric",
            {"key": "m", "value": "abc", "timestamp": 1},
            f"Invalid value \"abc\" for parameter 'value' supplied:  Hint: Value was of type 'str'. {SEE_DOCS}",
        ),
    ],
)
def test_bad_run_data_is_a_400_in_mlflows_words_and_nothing_is_logged(
    tracking: RunningGateway, path: str, body: dict[str, Any], message: str
) -> None:
    _, run_id = new_run(tracking)
    assert_400(post(tracking, path, {"run_id": run_id, **body}), message)
    assert run_data(tracking, run_id) == {
        "tags": [{"key": "mlflow.runName", "value": run_data(tracking, run_id)["tags"][0]["value"]}]
    }


def test_metric_values_as_strings_are_numbers(tracking: RunningGateway) -> None:
    _, run_id = new_run(tracking)
    for value in ("1.5", "NaN"):
        assert post(tracking, "/runs/log-metric", {"run_id": run_id, "key": "m", "value": value, "timestamp": 1}).ok
    history = MlflowClient(tracking.url).get_metric_history(run_id, "m")
    assert sorted(str(point.value) for point in history) == ["1.5", "nan"]


def test_a_history_answer_is_protobufs_json_page_by_page(tracking: RunningGateway) -> None:
    """The history is written as text, not through json.dumps: NaN is protobuf's string, numbers keep their
    exact value (an infinity is stored as the largest double, as MLflow stores it), and the pages join up
    to the whole history in step order."""
    _, run_id = new_run(tracking)
    values: list[Any] = ["NaN", "Infinity", "-Infinity", 0.1, -2.5, 5e-324, 1e300]
    metrics = [{"key": "é/m", "value": v, "timestamp": 2**53 + step, "step": step} for step, v in enumerate(values)]
    assert post(tracking, "/runs/log-batch", {"run_id": run_id, "metrics": metrics}).ok
    pages, token = [], None
    while True:
        query = {"run_id": run_id, "metric_key": "é/m", "max_results": "3", **({"page_token": token} if token else {})}
        answer = requests.get(f"{tracking.url}{API}/metrics/get-history", params=query, timeout=30)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
        page = answer.json()
        pages.append(page["metrics"])
        token = page.get("next_page_token")
        if token is None:
            assert set(page) == {"metrics"}
            break
    assert [len(page) for page in pages] == [3, 3, 1]
    infinities = {"Infinity": MAX, "-Infinity": -MAX}
    stored = [{**point, "value": infinities.get(point["value"], point["value"])} for point in metrics]
    assert [point for page in pages for point in page] == stored
    history = MlflowClient(tracking.url).get_metric_history(run_id, "é/m")
    assert [repr(point.value) for point in history] == ["nan", repr(MAX), repr(-MAX), "0.1", "-2.5", "5e-324", "1e+300"]
    query = {"run_id": run_id, "metric_key": "x"}
    empty = requests.get(f"{tracking.url}{API}/metrics/get-history", params=query, timeout=30)
    assert empty.status_code == 200 and empty.json() == {}


def _history_page(gateway: RunningGateway, run_id: str, token: str | None = None) -> requests.Response:
    query = {"run_id": run_id, "metric_key": "m", "max_results": "3", **({"page_token": token} if token else {})}
    return requests.get(f"{gateway.url}{API}/metrics/get-history", params=query, timeout=30)


def _token(fields: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode()


def test_a_history_page_continues_after_the_last_point_it_gave(tracking: RunningGateway) -> None:
    """A history's page token carries its last point's (step, timestamp, id), not a count of points: a
    point logged before it while a client pages does not shift the next page (an offset gave the same
    point twice), and the next page starts in the index at that point instead of reading and skipping
    every point before it. A token that is not the gateway's (MLflow's offset token among them) is a 400."""
    _, run_id = new_run(tracking)
    metrics = [{"key": "m", "value": float(step), "timestamp": 7, "step": step} for step in range(10, 16)]
    assert post(tracking, "/runs/log-batch", {"run_id": run_id, "metrics": metrics}).ok
    first = _history_page(tracking, run_id).json()
    assert [point["step"] for point in first["metrics"]] == [10, 11, 12]
    earlier = {"key": "m", "value": 0.0, "timestamp": 1, "step": 0}
    assert post(tracking, "/runs/log-batch", {"run_id": run_id, "metrics": [earlier]}).ok
    second = _history_page(tracking, run_id, first["next_page_token"]).json()
    assert [point["step"] for point in second["metrics"]] == [13, 14, 15]
    assert "next_page_token" not in second
    message = "Invalid page_token: pass back the next_page_token of the previous page"
    for token in (
        _token({"offset": 3}),
        _token({"after": [12, 7]}),
        _token({"after": [12, 7, True]}),
        _token({"after": [12, 7, 2**63]}),
        _token({"after": "12,7,3"}),
        _token([12, 7, 3]),
        "not base64 !",
    ):
        assert_400(_history_page(tracking, run_id, token), message)


def test_create_run_needs_an_experiment_and_checks_its_name_tag(tracking: RunningGateway) -> None:
    assert_400(post(tracking, "/runs/create", {}), f"Missing value for required parameter 'experiment_id'. {SEE_DOCS}")
    experiment, _ = new_run(tracking)
    response = post(
        tracking,
        "/runs/create",
        {"experiment_id": experiment, "run_name": "a", "tags": [{"key": "mlflow.runName", "value": "b"}]},
    )
    assert_400(
        response,
        "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values "
        "(run_name='a', mlflow.runName='b').",
    )
    run = post(tracking, "/runs/create", {"experiment_id": experiment}).json()["run"]["info"]
    assert run["start_time"] == 0  # MLflow's default when the client sends none


def test_sampled_history_keeps_the_ends_and_at_most_max_results(tracking: RunningGateway) -> None:
    client = MlflowClient(tracking.url)
    _, first = new_run(tracking)
    _, second = new_run(tracking)
    for step in range(10):
        client.log_metric(first, "loss", 1 / (step + 1), step=step, timestamp=1000 + step)
    client.log_metric(second, "loss", 0.5, step=0, timestamp=5)

    def sampled(**params: Any) -> list[tuple[str, int]]:
        response = requests.get(
            f"{tracking.url}{API}/metrics/get-history-bulk-interval",
            params={"run_ids": [first, second], "metric_key": "loss", **params},
            timeout=30,
        )
        assert response.ok, response.text
        return [(point["run_id"], point["step"]) for point in response.json().get("metrics", [])]

    assert sampled() == [(first, step) for step in range(10)] + [(second, 0)]
    three = [step for run, step in sampled(max_results=3) if run == first]
    assert len(three) == 3 and three[0] == 0 and three[-1] == 9 and three == sorted(three)
    assert [step for run, step in sampled(max_results=1) if run == first] == [9]
    assert [step for run, step in sampled(start_step=2, end_step=4) if run == first] == [2, 3, 4]
    response = requests.get(
        f"{tracking.url}{API}/metrics/get-history-bulk-interval",
        params={"run_ids": first, "metric_key": "loss", "start_step": 5},
        timeout=30,
    )
    assert_400(response, "If either start step or end step are specified, both must be specified.")


def test_search_datasets_lists_each_experiments_datasets_with_their_context(tracking: RunningGateway) -> None:
    experiment, run_id = new_run(tracking)
    inputs = [
        {
            "dataset": {"name": "train", "digest": "d1", "source_type": "local", "source": "x"},
            "tags": [{"key": "mlflow.data.context", "value": "training"}],
        },
        {"dataset": {"name": "eval", "digest": "d2", "source_type": "local", "source": "y"}},
    ]
    assert post(tracking, "/runs/log-inputs", {"run_id": run_id, "datasets": inputs}).ok
    response = requests.post(
        f"{tracking.url}{AJAX}/experiments/search-datasets", json={"experiment_ids": [experiment]}, timeout=30
    )
    summaries = sorted(response.json()["dataset_summaries"], key=lambda item: item["name"])
    assert summaries == [
        {"experiment_id": experiment, "name": "eval", "digest": "d2"},
        {"experiment_id": experiment, "name": "train", "digest": "d1", "context": "training"},
    ]
    too_many = requests.post(
        f"{tracking.url}{AJAX}/experiments/search-datasets", json={"experiment_ids": ["1"] * 21}, timeout=30
    )
    assert_400(
        too_many, "SearchDatasets request cannot specify more than 20 experiment_ids. Received 21 experiment_ids."
    )


def test_a_bulk_history_url_naming_1000_runs_gets_mlflows_json_400(tracking: RunningGateway) -> None:
    run_ids = [uuid.uuid4().hex for _ in range(1000)]
    response = requests.get(
        f"{tracking.url}{AJAX}/metrics/get-history-bulk",
        params={"run_id": run_ids, "metric_key": "m"},
        timeout=30,
    )
    assert_400(response, "GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received 1000 run_ids.")


def test_fields_are_checked_in_mlflows_order(tracking: RunningGateway) -> None:
    """What MLflow's own tests read: the first wrong field, in MLflow's order, names the error."""
    _, run_id = new_run(tracking)
    for path in ("/runs/log-parameter", "/runs/set-tag"):
        response = post(tracking, path, {"run_id": 31, "key": "k", "value": 41})
        assert_400(
            response, f"Invalid value 31 for parameter 'run_id' supplied:  Hint: Value was of type 'int'. {SEE_DOCS}"
        )
    response = post(tracking, "/experiments/create", {"name": "n", "artifact_location": "my_location", "tags": "5"})
    assert_400(
        response, f"Invalid value \"5\" for parameter 'tags' supplied:  Hint: Value was of type 'str'. {SEE_DOCS}"
    )
    upload = requests.post(
        f"{tracking.url}{AJAX}/upload-artifact", params={"run_uuid": run_id, "path": "../test.txt"}, timeout=30
    )
    assert upload.status_code == 400 and upload.json()["message"].startswith("Invalid path")


def test_a_logged_model_may_name_a_run_this_server_does_not_know(tracking: RunningGateway) -> None:
    """MLflow keeps `source_run_id` as a link and does not look it up; its client's tests rely on that."""
    experiment, _ = new_run(tracking)
    model = post(tracking, "/logged-models", {"experiment_id": experiment, "source_run_id": "123"}).json()["model"]
    assert model["info"]["source_run_id"] == "123"
