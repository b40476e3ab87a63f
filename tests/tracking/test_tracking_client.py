"""The stock `mlflow` client's ordinary tracking workflow against the gateway, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    InputTag,
    LoggedModelInput,
    LoggedModelOutput,
    Metric,
    Param,
    RunTag,
    ViewType,
)
from mlflow.exceptions import MlflowException

from tests.gateway_process import RunningGateway, run_gateway
from tests.postgres_server import store_uri_for

TRACKING = "/api/2.0/mlflow"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tracking(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    workdir = tmp_path_factory.mktemp(f"tracking-{request.param}")
    with run_gateway(workdir, "--backend-store-uri", store_uri_for(request, workdir), "--workers", "2") as running:
        yield running


@pytest.fixture(autouse=True)
def client_env(tracking: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(tracking.url)


def test_ordinary_workflow(tracking: RunningGateway, tmp_path: Path) -> None:
    experiment_name = f"exp-{uuid.uuid4().hex[:8]}"
    experiment = mlflow.set_experiment(experiment_name)
    assert experiment.artifact_location == f"mlflow-artifacts:/{experiment.experiment_id}"
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "weights.bin").write_bytes(os.urandom(10_000))
    (tmp_path / "tree" / "notes.txt").write_text("hello")
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_param("alpha", 0.5)
        mlflow.log_params({"beta": "1", "gamma": "x"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=4)
        mlflow.set_tag("team", "vision")
        mlflow.log_artifacts(str(tmp_path / "tree"), "outputs")
        mlflow.log_dict({"a": 1}, "config/params.json")
    with mlflow.start_run(run_name="second"):
        mlflow.log_param("alpha", 0.1)
        mlflow.log_metric("loss", 0.05, step=0)
        mlflow.log_metric("acc", 0.7)

    client = MlflowClient()
    fetched = client.get_run(run.info.run_id)
    assert fetched.info.status == "FINISHED"
    assert fetched.info.run_name == "first"
    assert fetched.info.artifact_uri == f"mlflow-artifacts:/{experiment.experiment_id}/{run.info.run_id}/artifacts"
    assert fetched.data.params == {"alpha": "0.5", "beta": "1", "gamma": "x"}
    assert fetched.data.metrics == {"loss": pytest.approx(0.2), "acc": 0.9, "f1": 0.8}
    assert fetched.data.tags["team"] == "vision"
    assert fetched.data.tags["mlflow.runName"] == "first"

    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, round(m.value, 4)) for m in history] == [(s, round(1.0 / (s + 1), 4)) for s in range(5)]

    found = mlflow.search_runs(
        [experiment.experiment_id], filter_string="metrics.loss < 0.5 and params.alpha = '0.5'", output_format="list"
    )
    assert [r.info.run_id for r in found] == [run.info.run_id]
    ordered = mlflow.search_runs([experiment.experiment_id], order_by=["metrics.acc DESC"], output_format="list")
    assert [r.info.run_name for r in ordered] == ["first", "second"]
    # a page of runs is assembled from one query per table: each run must get its own data back
    assert [r.data.params["alpha"] for r in ordered] == ["0.5", "0.1"]
    assert [r.data.metrics["loss"] for r in ordered] == [pytest.approx(0.2), 0.05]
    assert "team" in ordered[0].data.tags and "team" not in ordered[1].data.tags
    by_name = mlflow.search_runs(
        [experiment.experiment_id], filter_string="attributes.run_name = 'second'", output_format="list"
    )
    assert [r.info.run_name for r in by_name] == ["second"]

    listed = {(f.path, f.is_dir) for f in client.list_artifacts(run.info.run_id, "outputs")}
    assert listed == {("outputs/notes.txt", False), ("outputs/sub", True)}
    destination = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path / "dl")))
    assert (destination / "outputs" / "notes.txt").read_text() == "hello"
    assert (destination / "outputs" / "sub" / "weights.bin").read_bytes() == (
        tmp_path / "tree" / "sub" / "weights.bin"
    ).read_bytes()
    assert (destination / "config" / "params.json").read_text().strip().startswith("{")


def test_experiments_lifecycle_and_tags(tracking: RunningGateway) -> None:
    client = MlflowClient()
    name = f"life-{uuid.uuid4().hex[:8]}"
    experiment_id = client.create_experiment(name, tags={"owner": "me"})
    assert client.get_experiment(experiment_id).tags == {"owner": "me"}
    client.set_experiment_tag(experiment_id, "stage", "dev")
    client.rename_experiment(experiment_id, f"{name}-renamed")
    assert client.get_experiment_by_name(f"{name}-renamed").experiment_id == experiment_id
    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    assert f"{name}-renamed" not in [e.name for e in client.search_experiments()]
    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"
    assert client.get_experiment_by_name("no-such-experiment-here") is None


def test_run_delete_restore_and_tags(tracking: RunningGateway) -> None:
    client = MlflowClient()
    run = client.create_run("0", tags={"k": "v"})
    client.delete_tag(run.info.run_id, "k")
    assert "k" not in client.get_run(run.info.run_id).data.tags
    client.delete_run(run.info.run_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        client.log_param(run.info.run_id, "x", "1")
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        client.log_metric(run.info.run_id, "m", 1.0, step=1)
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        client.log_batch(run.info.run_id, metrics=[Metric("m", 2.0, 0, 2), Metric("n", 3.0, 0, 0)])
    client.restore_run(run.info.run_id)
    assert client.get_metric_history(run.info.run_id, "m") == []  # nothing of the refused writes stored
    assert client.get_run(run.info.run_id).data.metrics == {}
    client.log_param(run.info.run_id, "x", "1")


def in_threads(worker: Callable[[int], None], count: int) -> list[BaseException]:
    """Run `worker(0)` ... `worker(count - 1)` in threads at once; return what they raised."""
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            worker(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_clients_lose_no_metric(tracking: RunningGateway) -> None:
    client = MlflowClient()
    run = client.create_run("0")

    def worker(index: int) -> None:
        for batch in range(10):
            metrics = [
                Metric(f"m{index}", float(step), 1_700_000_000_000 + step, batch * 100 + step) for step in range(100)
            ]
            client.log_batch(run.info.run_id, metrics=metrics)

    assert in_threads(worker, 8) == []
    for index in range(8):
        history = client.get_metric_history(run.info.run_id, f"m{index}")
        assert len(history) == 1000
        assert sorted(m.step for m in history) == list(range(1000))


def test_latest_metric_is_the_highest_step_whatever_the_order(tracking: RunningGateway) -> None:
    client = MlflowClient()
    run_id = client.create_run("0").info.run_id
    for value, timestamp, step, latest in (
        (0.5, 1_000, 5, 0.5),
        (0.3, 2_000, 3, 0.5),  # a lower step, even if later, is not the latest
        (0.7, 3_000, 5, 0.7),  # the same step, later: latest
        (0.9, 500, 5, 0.7),  # the same step, earlier: not
        (0.1, 100, 6, 0.1),
    ):
        client.log_metric(run_id, "m", value, timestamp=timestamp, step=step)
        assert client.get_run(run_id).data.metrics["m"] == latest
    client.log_batch(run_id, metrics=[Metric("m", 0.2, 50, 9), Metric("m", 0.4, 60, 8), Metric("n", 1.0, 1, 1)])
    assert client.get_run(run_id).data.metrics == {"m": 0.2, "n": 1.0}
    assert len(client.get_metric_history(run_id, "m")) == 7


def test_concurrent_writers_of_the_same_keys_all_succeed(tracking: RunningGateway) -> None:
    """The same param (same value), tag and metric key from 8 clients at once: no 500, nothing twice."""
    client = MlflowClient()
    run_id = client.create_run("0").info.run_id
    start = threading.Barrier(8, timeout=60)

    def worker(index: int) -> None:
        try:
            start.wait()
            client.log_batch(
                run_id,
                metrics=[Metric("shared", float(index), 1_000 + index, index)],
                params=[Param("same", "value")],
                tags=[RunTag("same", "value")],
            )
        except BaseException:
            start.abort()  # release the others at once
            raise

    assert in_threads(worker, 8) == []
    run = client.get_run(run_id)
    assert run.data.params == {"same": "value"}
    assert run.data.tags["same"] == "value"
    assert run.data.metrics["shared"] == 7.0
    assert sorted(m.step for m in client.get_metric_history(run_id, "shared")) == list(range(8))


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "fragment"),
    [
        ("/runs/get?run_id=nope", None, 404, "RESOURCE_DOES_NOT_EXIST", "nope"),
        ("/experiments/get?experiment_id=987654", None, 404, "RESOURCE_DOES_NOT_EXIST", "987654"),
        ("/experiments/get?experiment_id=abc", None, 400, "INVALID_PARAMETER_VALUE", "Invalid experiment ID"),
        ("/experiments/get-by-name?experiment_name=nope-nope", None, 404, "RESOURCE_DOES_NOT_EXIST", "nope-nope"),
        ("/experiments/create", {}, 400, "INVALID_PARAMETER_VALUE", "'name'"),
        (
            "/experiments/create",
            {"name": "x", "artifact_location": "file:///etc"},
            400,
            "INVALID_PARAMETER_VALUE",
            "artifact_location",
        ),
        (
            "/experiments/create",
            {"name": "x", "artifact_location": "/var/lib/secrets"},
            400,
            "INVALID_PARAMETER_VALUE",
            "artifact_location",
        ),
        (
            "/experiments/create",
            {"name": "x", "artifact_location": "http://evil.example/x"},
            400,
            "INVALID_PARAMETER_VALUE",
            "artifact_location",
        ),
        (
            "/experiments/create",
            {"name": "x", "artifact_location": "mlflow-artifacts://evil:1/x"},
            400,
            "INVALID_PARAMETER_VALUE",
            "artifact_location",
        ),
        (
            "/experiments/create",
            {"name": "x", "artifact_location": "mlflow-artifacts:/a/../../b"},
            400,
            "INVALID_PARAMETER_VALUE",
            "artifact_location",
        ),
        (
            "/experiments/create",
            {"name": "x", "artifact_location": "s3://b/x#frag"},
            400,
            "INVALID_PARAMETER_VALUE",
            "artifact_location",
        ),
        ("/runs/search", {"experiment_ids": ["0"], "filter": "metrics.loss <<< 1"}, 400, "INVALID_PARAMETER_VALUE", ""),
        (
            "/runs/search",
            {"experiment_ids": ["0"], "max_results": 50001},
            400,
            "INVALID_PARAMETER_VALUE",
            "max_results",
        ),
        ("/runs/search", {"experiment_ids": ["0"], "page_token": "###"}, 400, "INVALID_PARAMETER_VALUE", "page_token"),
        (
            "/runs/log-metric",
            {"run_id": "nope", "key": "k", "value": 1, "timestamp": 1},
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "",
        ),
        ("/logged-models/m-nope", None, 404, "RESOURCE_DOES_NOT_EXIST", "m-nope"),
    ],
)
def test_errors_have_mlflow_codes(
    tracking: RunningGateway, path: str, body: dict[str, object] | None, status: int, code: str, fragment: str
) -> None:
    url = f"{tracking.url}{TRACKING}{path}"
    response = requests.get(url, timeout=30) if body is None else requests.post(url, json=body, timeout=30)
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code
    assert fragment in response.json()["message"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/experiments/create", {"name": "a\x00b"}),
        ("GET", "/experiments/get-by-name?experiment_name=a%00b", None),
        ("GET", "/runs/get?run_id=a%00", None),
        ("POST", "/runs/create", {"experiment_id": "0", "user_id": "u\x00"}),
        ("POST", "/runs/set-tag", {"run_id": "{run}", "key": "k", "value": "v\x00"}),
        ("POST", "/runs/log-parameter", {"run_id": "{run}", "key": "k\x00", "value": "v"}),
        ("POST", "/runs/log-batch", {"run_id": "{run}", "tags": [{"key": "k", "value": "\x00"}]}),
        ("POST", "/runs/log-batch", {"run_id": "{run}", "metrics": [{"key": "m\x00", "value": 1, "timestamp": 1}]}),
        ("POST", "/logged-models/search", {"filter": "name = 'a\x00'"}),
        ("GET", "/logged-models/m-a%00b", None),
    ],
)
def test_a_nul_character_is_a_400_on_every_store(
    tracking: RunningGateway, method: str, path: str, body: dict[str, object] | None
) -> None:
    """PostgreSQL's text refuses NUL: that was a 500 there (found by schemathesis on PostgreSQL)."""
    run_id = MlflowClient().create_run("0").info.run_id
    if body is not None:
        body = {key: run_id if value == "{run}" else value for key, value in body.items()}
    response = requests.request(method, f"{tracking.url}{TRACKING}{path}", json=body, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "NUL" in response.json()["message"]


def test_the_text_of_an_escape_is_not_a_nul(tracking: RunningGateway) -> None:
    """Only a decoded NUL is refused: a value holding a backslash and `u0000` (JSON `\\u0000`) is kept."""
    client = MlflowClient()
    run_id = client.create_run("0").info.run_id
    client.log_batch(run_id, tags=[RunTag("escaped", "a\\u0000b")])
    assert client.get_run(run_id).data.tags["escaped"] == "a\\u0000b"


def test_an_experiment_id_beyond_32_bits_is_not_found_on_every_store(tracking: RunningGateway) -> None:
    """The column is 32-bit; PostgreSQL refused the query parameter with a 500 (found by schemathesis)."""
    huge = "5974258298"
    got = requests.get(f"{tracking.url}{TRACKING}/experiments/get?experiment_id={huge}", timeout=30)
    assert (got.status_code, got.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    for action in ("delete", "restore"):
        changed = requests.post(
            f"{tracking.url}{TRACKING}/experiments/{action}", json={"experiment_id": huge}, timeout=30
        )
        assert (changed.status_code, changed.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    MlflowClient().create_logged_model("0")
    for search in ("/runs/search", "/logged-models/search"):
        found = requests.post(f"{tracking.url}{TRACKING}{search}", json={"experiment_ids": [huge]}, timeout=30)
        assert (found.status_code, found.json()) == (200, {}), search


def test_run_level_validation(tracking: RunningGateway) -> None:
    run_id = MlflowClient().create_run("0").info.run_id
    post = lambda path, body: requests.post(f"{tracking.url}{TRACKING}{path}", json=body, timeout=30)  # noqa: E731
    assert post("/runs/log-parameter", {"run_id": run_id, "key": "p", "value": "1"}).status_code == 200
    changed = post("/runs/log-parameter", {"run_id": run_id, "key": "p", "value": "2"})
    assert (changed.status_code, changed.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    too_many = post(
        "/runs/log-batch", {"run_id": run_id, "params": [{"key": f"k{i}", "value": "v"} for i in range(101)]}
    )
    assert too_many.status_code == 400
    assert "at most" in too_many.json()["message"]
    assert post("/runs/log-metric", {"run_id": run_id, "key": "k", "value": "abc", "timestamp": 1}).status_code == 400
    assert post("/runs/log-metric", {"run_id": run_id, "key": "", "value": 1, "timestamp": 1}).status_code == 400
    assert post("/runs/update", {"run_id": run_id, "status": "EXPLODED"}).status_code == 400
    text = requests.post(
        f"{tracking.url}{TRACKING}/runs/create", data=b"{}", headers={"Content-Type": "text/plain"}, timeout=30
    )
    assert (text.status_code, text.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")  # MLflow's code for it
    assert text.json()["message"] == "Bad Request. Content-Type must be one of ['application/json']."
    bare = requests.post(f"{tracking.url}{TRACKING}/runs/create", data=b"{}", timeout=30)
    assert (bare.status_code, bare.json()["message"]) == (400, "Bad Request. Content-Type header is missing.")
    nan = post("/runs/log-metric", {"run_id": run_id, "key": "n", "value": "NaN", "timestamp": 1})
    assert nan.status_code == 200
    assert MlflowClient().get_run(run_id).data.metrics["n"] != MlflowClient().get_run(run_id).data.metrics["n"]


def test_server_info_reports_the_store(tracking: RunningGateway) -> None:
    info = requests.get(f"{tracking.url}/api/3.0/mlflow/server-info", timeout=30).json()
    assert info["artifact_gateway"]["mode"] == "proxied"


def test_readiness_checks_database_and_destination(tracking: RunningGateway) -> None:
    response = requests.get(f"{tracking.url}/health/ready", timeout=30)
    assert (response.status_code, response.json()) == (200, {"status": "ok", "database": "ok", "artifacts": "ok"})
    info = requests.get(f"{tracking.url}/api/3.0/mlflow/server-info", timeout=30).json()
    assert info["store_type"] == "SqlStore"


def test_logged_model_endpoints(tracking: RunningGateway) -> None:
    base = f"{tracking.url}{TRACKING}/logged-models"
    run_id = MlflowClient().create_run("0").info.run_id
    created = requests.post(
        base,
        json={
            "experiment_id": "0",
            "name": "clf",
            "source_run_id": run_id,
            "tags": [{"key": "k", "value": "v"}],
            "params": [{"key": "depth", "value": "3"}],
        },
        timeout=30,
    )
    assert created.status_code == 200, created.text
    model = created.json()["model"]
    model_id = model["info"]["model_id"]
    assert model["info"]["status"] == "LOGGED_MODEL_PENDING"
    assert model["info"]["artifact_uri"] == f"mlflow-artifacts:/0/models/{model_id}/artifacts"
    assert model["data"]["params"] == [{"key": "depth", "value": "3"}]
    patched = requests.patch(
        f"{base}/{model_id}", json={"model_id": model_id, "status": "LOGGED_MODEL_READY"}, timeout=30
    )
    assert patched.json()["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    bad_status = requests.patch(f"{base}/{model_id}", json={"status": "DONE"}, timeout=30)
    assert (bad_status.status_code, bad_status.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert (
        requests.patch(f"{base}/{model_id}/tags", json={"tags": [{"key": "k2", "value": "v2"}]}, timeout=30).status_code
        == 200
    )
    assert requests.delete(f"{base}/{model_id}/tags/k", timeout=30).status_code == 200
    tags = requests.get(f"{base}/{model_id}", timeout=30).json()["model"]["info"]["tags"]
    assert tags == [{"key": "k2", "value": "v2"}]
    found = requests.post(f"{base}/search", json={"experiment_ids": ["0"], "filter": "name = 'clf'"}, timeout=30)
    assert model_id in [m["info"]["model_id"] for m in found.json()["models"]]
    none = requests.post(f"{base}/search", json={"experiment_ids": ["0"], "filter": "name = 'nope'"}, timeout=30)
    assert none.json() == {}
    bad_filter = requests.post(f"{base}/search", json={"experiment_ids": ["0"], "filter": "size > 3"}, timeout=30)
    assert bad_filter.status_code == 400
    assert (
        requests.post(
            f"{TRACKING}".join([tracking.url, "/runs/outputs"]),
            json={"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]},
            timeout=30,
        ).status_code
        == 200
    )
    outputs = MlflowClient().get_run(run_id).outputs.model_outputs
    assert [output.model_id for output in outputs] == [model_id]
    assert requests.delete(f"{base}/{model_id}", timeout=30).status_code == 200
    gone = requests.get(f"{base}/{model_id}", timeout=30)
    assert (gone.status_code, gone.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_experiment_search_filters_any_and_casing(tracking: RunningGateway) -> None:
    client = MlflowClient()
    name = f"filt-{uuid.uuid4().hex[:8]}"
    client.create_experiment(name, tags={"team": "nlp"})
    for clause in (f"name = '{name}' and tags.team = 'nlp'", f"name = '{name}' AND tags.team = 'nlp'"):
        assert [e.name for e in client.search_experiments(filter_string=clause)] == [name]
    assert client.search_experiments(filter_string=f"name = '{name}' And tags.team = 'cv'") == []


def new_experiments(prefix: str, names: list[str], **tags: dict[str, str]) -> dict[str, str]:
    """Create experiments `prefix + name` in this order, at least 2 ms apart (creation times are in ms)."""
    client = MlflowClient()
    ids = {}
    for name in names:
        ids[name] = client.create_experiment(prefix + name, tags=tags.get(name))
        time.sleep(0.005)
    return ids


def names_of(experiments: list[Experiment], prefix: str) -> list[str]:
    return [e.name.removeprefix(prefix) for e in experiments]


def test_search_experiments_default_order_is_newest_first_and_pages_stably(tracking: RunningGateway) -> None:
    prefix = f"order-{uuid.uuid4().hex[:8]}-"
    new_experiments(prefix, ["a", "b", "c", "d", "e"])
    assert [e.name for e in mlflow.search_experiments(max_results=1)] == [prefix + "e"]
    assert names_of(mlflow.search_experiments(filter_string=f"name LIKE '{prefix}%'"), prefix) == list("edcba")
    client, pages, token = MlflowClient(), [], None
    while True:
        page = client.search_experiments(max_results=2, filter_string=f"name LIKE '{prefix}%'", page_token=token)
        pages.append(names_of(page, prefix))
        token = page.token
        if not token:
            break
    assert pages == [["e", "d"], ["c", "b"], ["a"]]
    # the oldest experiment, the default one, is on the last page of an unfiltered search
    everything = client.search_experiments(max_results=50_000)
    assert everything[-1].experiment_id == "0"


def test_search_experiments_order_by_each_key(tracking: RunningGateway) -> None:
    prefix = f"keys-{uuid.uuid4().hex[:8]}-"
    ids = new_experiments(prefix, ["b", "c", "a"])
    client = MlflowClient()
    client.rename_experiment(ids["b"], prefix + "b2")  # the last updated now
    by_name = f"name LIKE '{prefix}%'"

    def ordered(*order_by: str) -> list[str]:
        return names_of(mlflow.search_experiments(filter_string=by_name, order_by=list(order_by)), prefix)

    assert ordered("name") == ordered("attribute.name ASC") == ["a", "b2", "c"]
    assert ordered("name DESC") == ["c", "b2", "a"]
    assert ordered("experiment_id") == ordered("creation_time asc") == ["b2", "c", "a"]
    assert ordered("attribute.experiment_id DESC") == ordered("creation_time DESC") == ["a", "c", "b2"]
    assert ordered("last_update_time DESC") == ["b2", "a", "c"]
    assert ordered("last_update_time DESC", "name DESC") == ["b2", "a", "c"]


def test_search_experiments_by_creation_time_and_id(tracking: RunningGateway) -> None:
    prefix = f"time-{uuid.uuid4().hex[:8]}-"
    ids = new_experiments(prefix, ["a", "b", "c"])
    middle = MlflowClient().get_experiment(ids["b"]).creation_time
    by_name = f"name LIKE '{prefix}%'"

    def found(clause: str) -> list[str]:
        return names_of(mlflow.search_experiments(filter_string=f"{by_name} AND {clause}"), prefix)

    assert found(f"creation_time >= {middle}") == ["c", "b"]
    assert found(f"attribute.creation_time < {middle}") == ["a"]
    assert found(f"creation_time = {middle}") == ["b"]
    assert found("last_update_time > 0") == ["c", "b", "a"]
    assert found(f"experiment_id IN ('{ids['a']}', '{ids['c']}')") == ["c", "a"]
    assert found(f"experiment_id != '{ids['a']}'") == ["c", "b"]
    assert found("experiment_id NOT IN ('99999999999')") == ["c", "b", "a"]  # beyond the column: nothing excluded
    assert found("experiment_id = '99999999999'") == []


def test_experiment_name_like_is_case_sensitive_and_ilike_is_not(tracking: RunningGateway) -> None:
    prefix = f"case-{uuid.uuid4().hex[:8]}-"
    new_experiments(prefix, ["alpha2", "Alpha", "beta"])

    def found(clause: str) -> list[str]:
        return sorted(names_of(mlflow.search_experiments(filter_string=clause), prefix))

    assert found(f"name LIKE '{prefix}a%'") == ["alpha2"]
    assert found(f"name LIKE '{prefix}A%'") == ["Alpha"]
    assert found(f"name ILIKE '{prefix.upper()}A%'") == ["Alpha", "alpha2"]
    assert found(f"name = '{prefix}ALPHA2'") == []
    assert found(f"name != '{prefix}beta' AND name LIKE '{prefix}%'") == ["Alpha", "alpha2"]


def test_experiment_tag_filters(tracking: RunningGateway) -> None:
    prefix = f"tagf-{uuid.uuid4().hex[:8]}-"
    new_experiments(prefix, ["red", "Red", "none"], red={"team": "red"}, Red={"team": "Red", "x": "1"})
    by_name = f"name LIKE '{prefix}%'"

    def found(clause: str) -> list[str]:
        return sorted(names_of(mlflow.search_experiments(filter_string=f"{by_name} AND {clause}"), prefix))

    assert found("tags.team LIKE 'r%'") == ["red"]
    assert found("tag.team LIKE 'R%'") == ["Red"]
    assert found("tag.team ILIKE 'r%'") == ["Red", "red"]
    assert found("tags.team = 'RED'") == []
    assert found("tags.team != 'red'") == ["Red"]  # an experiment without the tag does not match !=
    assert found("tags.team IS NULL") == ["none"]
    assert found("tags.x IS NOT NULL") == ["Red"]
    assert found("tags.team = 'red' AND tags.x IS NULL") == ["red"]


def test_run_search_like_is_case_sensitive_and_ilike_is_not(tracking: RunningGateway) -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment(f"runcase-{uuid.uuid4().hex[:8]}")
    for name, value in (("lower", "adam"), ("upper", "Adam")):
        run_id = client.create_run(experiment_id, run_name=f"{name}-run").info.run_id
        client.log_param(run_id, "opt", value)
        client.set_tag(run_id, "opt", value)

    def found(clause: str) -> list[str]:
        runs = mlflow.search_runs([experiment_id], filter_string=clause, output_format="list")
        return sorted(r.info.run_name for r in runs)

    assert found("params.opt LIKE 'a%'") == ["lower-run"]
    assert found("params.opt LIKE 'A%'") == ["upper-run"]
    assert found("params.opt ILIKE 'a%'") == ["lower-run", "upper-run"]
    assert found("tags.opt LIKE 'a%'") == ["lower-run"]
    assert found("tag.opt LIKE 'A%'") == ["upper-run"]
    assert found("tag.opt ILIKE 'A%'") == ["lower-run", "upper-run"]
    assert found("attributes.run_name LIKE 'L%'") == []
    assert found("attributes.run_name ILIKE 'L%'") == ["lower-run"]


def test_a_repeated_search_sees_new_runs_and_pages_through_them(tracking: RunningGateway) -> None:
    """The server keeps a search's statement for its arguments, never its answer: the same search asked
    again finds what was logged meanwhile, and its pages follow one another."""
    client = MlflowClient()
    experiment_id = client.create_experiment(f"again-{uuid.uuid4().hex[:8]}")

    def log_run(score: float) -> str:
        run_id = client.create_run(experiment_id).info.run_id
        client.log_batch(run_id, metrics=[Metric("score", score, 1, 0)], params=[Param("kind", "a")])
        return run_id

    def search(page_token: str | None = None) -> tuple[list[str], str | None]:
        page = client.search_runs(
            [experiment_id],
            "metrics.score > 0.5 and params.kind = 'a'",
            order_by=["metrics.score DESC"],
            max_results=2,
            page_token=page_token,
        )
        return [run.info.run_id for run in page], page.token

    best, low = log_run(0.9), log_run(0.2)
    assert search() == ([best], None)
    second, third = log_run(0.8), log_run(0.7)
    first_page, token = search()
    assert first_page == [best, second] and token
    assert search(token) == ([third], None)
    assert low not in first_page


def test_a_searched_run_carries_each_of_its_children_in_mlflows_order(tracking: RunningGateway) -> None:
    """Metrics, params, tags, dataset inputs, model inputs and outputs of several runs read for a search
    page at once (on PostgreSQL one statement for all six tables) each reach their own run, in order."""
    client = MlflowClient()
    experiment_id = client.create_experiment(f"children-{uuid.uuid4().hex[:8]}")
    model = mlflow.initialize_logged_model(name="used", experiment_id=experiment_id)
    expected = {}
    for n in range(3):
        run_id = client.create_run(experiment_id, run_name=f"run-{n}").info.run_id
        keys = [f"k{n}-{letter}" for letter in "cab"]
        client.log_batch(
            run_id,
            metrics=[Metric(key, float(i + n), 1, 7) for i, key in enumerate(keys)],
            params=[Param(key, f"p{n}") for key in keys],
            tags=[RunTag(key, f"t{n}") for key in keys],
        )
        dataset = Dataset(f"data-{n}", f"digest{n}", "local", f"/data/{n}", schema='{"a": 1}', profile="{}")
        client.log_inputs(run_id, datasets=[DatasetInput(dataset, [InputTag("mlflow.data.context", "train")])])
        if n == 1:
            client.log_inputs(run_id, models=[LoggedModelInput(model.model_id)])
            client.log_outputs(run_id, [LoggedModelOutput(model.model_id, 3)])
        expected[run_id] = (n, sorted(keys))
    found = client.search_runs([experiment_id], order_by=["attributes.run_name ASC"])
    assert [run.info.run_name for run in found] == ["run-0", "run-1", "run-2"]
    for run in found:
        n, keys = expected[run.info.run_id]
        assert run.data.metrics == {key: float("cab".index(key[-1]) + n) for key in keys}
        assert list(run.data.params) == keys and set(run.data.params.values()) == {f"p{n}"}
        assert [key for key in run.data.tags if not key.startswith("mlflow.")] == keys
        assert [(i.dataset.name, i.dataset.digest, i.dataset.schema, [(t.key, t.value) for t in i.tags])
                for i in run.inputs.dataset_inputs] == [(f"data-{n}", f"digest{n}", '{"a": 1}',
                                                        [("mlflow.data.context", "train")])]  # fmt: skip
        assert [i.model_id for i in run.inputs.model_inputs] == ([model.model_id] if n == 1 else [])
        assert [(o.model_id, o.step) for o in (run.outputs.model_outputs if run.outputs else [])] == (
            [(model.model_id, 3)] if n == 1 else []
        )
    raw = requests.post(
        f"{tracking.url}{TRACKING}/runs/search", json={"experiment_ids": [experiment_id]}, timeout=30
    ).json()["runs"]
    for run in raw:
        assert [m["key"] for m in run["data"]["metrics"]] == expected[run["info"]["run_id"]][1]
        assert [p["key"] for p in run["data"]["params"]] == expected[run["info"]["run_id"]][1]
        tag_keys = [t["key"] for t in run["data"]["tags"]]
        assert tag_keys == sorted(tag_keys)


def test_run_search_filters_of_every_kind_and_value_type(tracking: RunningGateway) -> None:
    """Each kind of run filter, with numbers written as integers or decimals against integer and float
    columns, lists, LIKE and datasets, finds exactly its runs (the statement is compiled once and
    its values bound by the driver, which takes only the column's own type on PostgreSQL)."""
    client = MlflowClient()
    experiment_id = client.create_experiment(f"filters-{uuid.uuid4().hex[:8]}")
    ids = []
    for n in range(4):
        run = client.create_run(experiment_id, start_time=1_000 * (n + 1), run_name=f"Run-{n}")
        run_id = run.info.run_id
        client.log_batch(
            run_id, metrics=[Metric("m", n * 1.5, 1, 0)], params=[Param("p", "xy"[n % 2])], tags=[RunTag("t", f"a{n}")]
        )
        dataset = Dataset(f"data-{n % 2}", f"digest{n}", "local", "/data")
        client.log_inputs(run_id, datasets=[DatasetInput(dataset, [])])
        if n < 2:
            client.set_terminated(run_id, end_time=10_000 + n)
        ids.append(run_id)

    def found(filter_string: str) -> set[int]:
        runs = client.search_runs([experiment_id], filter_string, run_view_type=ViewType.ALL)
        return {ids.index(run.info.run_id) for run in runs}

    assert found("attributes.start_time >= 2000") == {1, 2, 3}
    assert found("attributes.start_time > 1500.5") == {1, 2, 3}
    assert found("attributes.end_time < 10001") == {0}
    assert found("attributes.status = 'FINISHED'") == {0, 1}
    assert found(f"attributes.run_id IN ('{ids[0]}', '{ids[3]}')") == {0, 3}
    assert found("attributes.run_name ILIKE 'run-%'") == {0, 1, 2, 3}
    assert found("attributes.run_name LIKE 'run-%'") == set()
    assert found("metrics.m > 1") == {1, 2, 3}
    assert found("metrics.m <= 1.5") == {0, 1}
    assert found("params.p = 'y' and tags.t != 'a1'") == {3}
    assert found("tags.t LIKE 'a%' and metrics.m >= 3") == {2, 3}
    assert found("datasets.name = 'data-1'") == {1, 3}
    assert found("datasets.digest IN ('digest0', 'digest2')") == {0, 2}


def test_experiment_tag_values_up_to_20000_characters(tracking: RunningGateway) -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment(f"long-{uuid.uuid4().hex[:8]}", tags={"created": "c" * 20_000})
    client.set_experiment_tag(experiment_id, "set", "s" * 20_000)
    assert client.get_experiment(experiment_id).tags == {"created": "c" * 20_000, "set": "s" * 20_000}
    with pytest.raises(MlflowException, match="'value' exceeds the maximum length of 20000 characters"):
        client.set_experiment_tag(experiment_id, "set", "t" * 20_001)
    too_long = f"long-{uuid.uuid4().hex[:8]}"
    with pytest.raises(MlflowException, match="'value' exceeds the maximum length of 20000 characters"):
        client.create_experiment(too_long, tags={"created": "c" * 20_001})
    assert client.get_experiment(experiment_id).tags["set"] == "s" * 20_000
    assert client.get_experiment_by_name(too_long) is None


def test_delete_experiment_tag(tracking: RunningGateway) -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment(f"deltag-{uuid.uuid4().hex[:8]}", tags={"a": "1", "b": "2"})
    client.delete_experiment_tag(experiment_id, "a")
    assert client.get_experiment(experiment_id).tags == {"b": "2"}
    with pytest.raises(MlflowException, match=f"No tag with name: a in experiment with id {experiment_id}") as gone:
        client.delete_experiment_tag(experiment_id, "a")
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException, match="No Experiment with id=987654 exists"):
        client.delete_experiment_tag("987654", "b")

    client.delete_experiment(experiment_id)
    inactive = f"The experiment {experiment_id} must be in the 'active' state. Current state is deleted."
    for change in (
        lambda: client.delete_experiment_tag(experiment_id, "b"),
        lambda: client.set_experiment_tag(experiment_id, "c", "3"),
    ):
        with pytest.raises(MlflowException, match=re.escape(inactive)) as refused:
            change()
        assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_experiment(experiment_id).tags == {"b": "2"}
    client.restore_experiment(experiment_id)
    client.delete_experiment_tag(experiment_id, "b")
    assert client.get_experiment(experiment_id).tags == {}


def test_the_default_experiment_can_be_deleted_and_restored(tracking: RunningGateway) -> None:
    client = MlflowClient()
    client.delete_experiment("0")
    try:
        assert client.get_experiment("0").lifecycle_stage == "deleted"
        assert "0" not in [e.experiment_id for e in client.search_experiments(max_results=50_000)]
        with pytest.raises(
            MlflowException,
            match=re.escape("The experiment 0 must be in the 'active' state. Current state is deleted."),
        ):
            client.create_run("0")
    finally:
        client.restore_experiment("0")
    assert client.get_experiment("0").lifecycle_stage == "active"
    assert client.create_run("0").info.experiment_id == "0"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"max_results": 10, "order_by": ["bogus"]}, "Invalid attribute key 'bogus' specified. Valid keys are "),
        ({"max_results": 10, "order_by": ["tags.team"]}, "Invalid order_by entity: tag"),
        (
            {"max_results": 10, "order_by": ["name ASCENDING"]},
            "Invalid ordering key in order_by clause 'name ASCENDING'.",
        ),
        (
            {"max_results": 10, "order_by": "name"},
            "Invalid value \"name\" for parameter 'order_by' supplied:  Hint: Value was of type 'str'. "
            "See the API docs for more information about request parameters.",
        ),
        ({"max_results": 10, "filter": "name > 'a'"}, "Invalid comparator '>' not one of"),
        ({"max_results": 10, "filter": "name = 'a' OR name = 'b'"}, "Invalid clause(s) in filter string: "),
        (
            {"max_results": 10, "filter": "creation_time > '0'"},
            "Expected numeric value type for numeric attribute: creation_time. Found '0'",
        ),
        (
            {"max_results": 10, "filter": "creation_time > 1.5"},
            "Invalid value for numeric attribute 'creation_time': '1.5'",
        ),
        (
            {"max_results": 10, "filter": "attributes.creation_time > 0"},
            "Invalid entity type 'attributes'. Valid entity types are ('attribute', 'tag', 'tags')",
        ),
        ({"max_results": 10, "filter": "params.a = 'b'"}, "Invalid entity type 'params'"),
        ({"max_results": 10, "filter": "foo = 'b'"}, "Invalid attribute key 'foo' specified."),
        ({"max_results": 10, "filter": "experiment_id = 'abc'"}, "Invalid experiment ID 'abc'."),
        ({"max_results": 10, "view_type": "SIDEWAYS"}, "Invalid view type 'SIDEWAYS'"),
    ],
)
def test_experiment_search_refusals(tracking: RunningGateway, body: dict[str, object], message: str) -> None:
    response = requests.post(f"{tracking.url}{TRACKING}/experiments/search", json=body, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in response.json()["message"]


def test_experiment_search_over_get_and_view_type_numbers(tracking: RunningGateway) -> None:
    prefix = f"get-{uuid.uuid4().hex[:8]}-"
    ids = new_experiments(prefix, ["a", "b"])
    MlflowClient().delete_experiment(ids["b"])
    query = {"max_results": "10", "filter": f"name LIKE '{prefix}%'", "order_by": "name DESC", "view_type": "3"}
    got = requests.get(f"{tracking.url}{TRACKING}/experiments/search", params=query, timeout=30)
    assert [e["name"] for e in got.json()["experiments"]] == [prefix + "b", prefix + "a"]
    for view_type, expected in ((2, ["b"]), (1, ["a"]), ("DELETED_ONLY", ["b"])):
        body = {"max_results": 10, "filter": f"name LIKE '{prefix}%'", "view_type": view_type}
        posted = requests.post(f"{tracking.url}{TRACKING}/experiments/search", json=body, timeout=30)
        assert [e["name"].removeprefix(prefix) for e in posted.json()["experiments"]] == expected


def test_experiment_refusals_write_nothing(tracking: RunningGateway) -> None:
    post = lambda path, body: requests.post(f"{tracking.url}{TRACKING}{path}", json=body, timeout=30)  # noqa: E731
    name = f"refused-{uuid.uuid4().hex[:8]}"
    as_object = post("/experiments/create", {"name": name, "tags": {"a": "b"}})
    assert (as_object.status_code, as_object.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert as_object.json()["message"] == (
        "Invalid value {\"a\":\"b\"} for parameter 'tags' supplied:  Hint: Value was of type 'dict'. "
        "See the API docs for more information about request parameters."
    )
    missing = requests.get(
        f"{tracking.url}{TRACKING}/experiments/get-by-name", params={"experiment_name": name}, timeout=30
    )
    assert missing.status_code == 404

    experiment_id = MlflowClient().create_experiment(name, tags={"k": "v"})
    no_key = post("/experiments/delete-experiment-tag", {"experiment_id": experiment_id})
    assert (no_key.status_code, no_key.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "Missing value for required parameter 'key'" in no_key.json()["message"]
    too_long = post(
        "/experiments/set-experiment-tag", {"experiment_id": experiment_id, "key": "k", "value": "x" * 20_001}
    )
    assert (too_long.status_code, too_long.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    absent = post("/experiments/delete-experiment-tag", {"experiment_id": experiment_id, "key": "nope"})
    assert absent.status_code == 404
    assert (absent.json()["error_code"], absent.json()["message"]) == (
        "RESOURCE_DOES_NOT_EXIST",
        f"No tag with name: nope in experiment with id {experiment_id}",
    )
    assert MlflowClient().get_experiment(experiment_id).tags == {"k": "v"}
    deleted = post("/experiments/delete-experiment-tag", {"experiment_id": experiment_id, "key": "k"})
    assert (deleted.status_code, deleted.json()) == (200, {})
