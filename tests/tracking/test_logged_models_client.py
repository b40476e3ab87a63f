"""MLflow 3 logged models as the stock client uses them, on SQLite and PostgreSQL: log_model inside a run
(with and without a model id), metrics linked to models, model params, search by metrics, params, tags
and attributes, the active model, model inputs of runs, deleted models, a model's artifact listing; no
metric point stored twice. Then the raw REST refusals: each a clear 4xx that leaves nothing half-written."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from tests.gateway_process import RunningGateway, run_gateway
from tests.postgres_server import store_uri_for


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tracking(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    workdir = tmp_path_factory.mktemp(f"models-{request.param}")
    with run_gateway(workdir, "--backend-store-uri", store_uri_for(request, workdir)) as running:
        yield running


@pytest.fixture(autouse=True)
def client_env(tracking: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(tracking.url)


def small_model() -> LogisticRegression:
    return LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


def test_log_model_stores_each_metric_point_once_and_links_it(tracking: RunningGateway, tmp_path: Path) -> None:
    mlflow.set_experiment(f"points-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run() as run:
        for step in range(10):
            mlflow.log_metric("accuracy", step / 10, step=step)
        mlflow.log_metric("loss", 0.25)
        first = mlflow.sklearn.log_model(small_model(), name="model")
        second = mlflow.sklearn.log_model(small_model(), name="again")
    client = MlflowClient()
    history = client.get_metric_history(run.info.run_id, "accuracy")
    assert sorted((m.step, m.value) for m in history) == [(step, step / 10) for step in range(10)]
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 1
    for info in (first, second):  # the client links the run's points at log_model's step (0)
        model = mlflow.get_logged_model(info.model_id)
        linked = sorted((m.key, m.step, m.value, m.run_id) for m in model.metrics or [])
        assert linked == [("accuracy", 0, 0.0, run.info.run_id), ("loss", 0, 0.25, run.info.run_id)]


def test_a_metric_logged_twice_is_one_point(tracking: RunningGateway) -> None:
    client = MlflowClient()
    experiment_id = client.create_experiment(f"twice-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment_id)
    for _ in range(3):
        client.log_metric(run.info.run_id, "m", 1.5, timestamp=1000, step=2)
    client.log_metric(run.info.run_id, "m", 1.5, timestamp=1001, step=2)  # another time: another point
    points = client.get_metric_history(run.info.run_id, "m")
    assert sorted((p.timestamp, p.step, p.value) for p in points) == [(1000, 2, 1.5), (1001, 2, 1.5)]


def test_log_metric_with_a_model_id_links_it(tracking: RunningGateway) -> None:
    mlflow.set_experiment(f"linked-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run() as run:
        model = mlflow.initialize_logged_model(name="linked")
        mlflow.log_metric("f1", 0.75, step=1, model_id=model.model_id)
    found = mlflow.get_logged_model(model.model_id)
    assert [(m.key, m.value, m.step, m.run_id) for m in found.metrics or []] == [("f1", 0.75, 1, run.info.run_id)]
    assert [(m.step, m.value) for m in MlflowClient().get_metric_history(run.info.run_id, "f1")] == [(1, 0.75)]


API = "/api/2.0/mlflow"


def post(tracking: RunningGateway, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{tracking.url}{API}{path}", json=body, timeout=30)


def names(models: list[Any]) -> list[str]:
    return [model.name for model in models]


def test_log_model_with_and_without_a_model_id(tracking: RunningGateway) -> None:
    mlflow.set_experiment(f"log-model-{uuid.uuid4().hex[:8]}")
    run_params = {f"p{i:03}": str(i) for i in range(150)}
    with mlflow.start_run() as run:
        mlflow.log_params(run_params)
        # A new model takes the run's params: 100 in its creation, the other 50 through logged-models/{id}/params.
        fresh = mlflow.sklearn.log_model(small_model(), name="fresh")
        pending = mlflow.initialize_logged_model(name="prepared")
        into = mlflow.sklearn.log_model(small_model(), name="prepared", model_id=pending.model_id)
    assert into.model_id == pending.model_id
    model = mlflow.get_logged_model(fresh.model_id)
    assert (model.name, model.status.to_proto(), model.source_run_id) == ("fresh", 2, run.info.run_id)  # READY
    assert model.params == run_params
    prepared = mlflow.get_logged_model(pending.model_id)
    assert (prepared.name, prepared.status.to_proto()) == ("prepared", 2)
    outputs = MlflowClient().get_run(run.info.run_id).outputs.model_outputs
    assert sorted(output.model_id for output in outputs) == sorted([fresh.model_id, pending.model_id])
    listing = requests.get(f"{tracking.url}{API}/logged-models/{pending.model_id}/artifacts/directories", timeout=30)
    assert listing.status_code == 200, listing.text
    assert listing.json()["root_uri"] == prepared.artifact_location
    files = {item["path"]: item for item in listing.json()["files"]}
    assert files["MLmodel"]["is_dir"] is False and files["MLmodel"]["file_size"] > 0


def test_a_model_without_a_name_gets_a_generated_one(tracking: RunningGateway) -> None:
    mlflow.set_experiment(f"unnamed-{uuid.uuid4().hex[:8]}")
    first, second = mlflow.initialize_logged_model(), mlflow.initialize_logged_model()
    for model in (first, second):
        adjective, noun, number = model.name.split("-")
        assert adjective.isalpha() and noun.isalpha() and number.isdigit(), model.name
    with pytest.raises(MlflowException, match=r"Invalid model name \('a/b'\) provided"):
        mlflow.initialize_logged_model(name="a/b")


def test_model_params_metrics_and_search(tracking: RunningGateway) -> None:
    experiment_id = mlflow.set_experiment(f"search-{uuid.uuid4().hex[:8]}").experiment_id
    with mlflow.start_run():
        good = mlflow.initialize_logged_model(name="good", tags={"team": "red"})
        bad = mlflow.initialize_logged_model(name="bad", tags={"team": "blue"})
        best = mlflow.initialize_logged_model(name="best", tags={"team": "red"})
        mlflow.initialize_logged_model(name="unmeasured")
        for model, value in ((good, 0.7), (bad, 0.2), (best, 0.9)):
            mlflow.log_metric("acc", value, model_id=model.model_id)
    mlflow.log_model_params({"lr": "0.1", "depth": "3"}, model_id=good.model_id)
    mlflow.log_model_params({"lr": "0.1"}, model_id=good.model_id)  # the same value again is fine
    mlflow.log_model_params({"lr": "0.01"}, model_id=best.model_id)
    with pytest.raises(MlflowException, match="Changing param values is not allowed"):
        mlflow.log_model_params({"lr": "0.5"}, model_id=good.model_id)
    assert mlflow.get_logged_model(good.model_id).params == {"lr": "0.1", "depth": "3"}

    def search(**arguments: Any) -> list[str]:
        return names(mlflow.search_logged_models(output_format="list", **arguments))

    by_acc = [{"field_name": "metrics.acc", "ascending": False}]
    assert search(filter_string="metrics.acc > 0.5", order_by=by_acc) == ["best", "good"]
    assert search(order_by=by_acc) == ["best", "good", "bad", "unmeasured"]  # without the metric: last
    assert search(order_by=[{"field_name": "metrics.acc"}]) == ["bad", "good", "best", "unmeasured"]
    assert search() == ["unmeasured", "best", "bad", "good"]  # newest first
    assert search(filter_string="params.lr = '0.1'") == ["good"]
    assert search(filter_string="params.lr LIKE '0.%'", order_by=by_acc) == ["best", "good"]
    assert search(filter_string="tags.team = 'red' AND metrics.acc < 0.8") == ["good"]
    assert search(filter_string="tags.team IN ('red', 'blue')", order_by=by_acc) == ["best", "good", "bad"]
    assert search(filter_string="name != 'good' AND metrics.acc >= 0.2", order_by=by_acc) == ["best", "bad"]
    assert search(filter_string="name = 'best'") == ["best"]
    assert search(filter_string="metrics.acc > 0.95") == []
    assert search(max_results=2, order_by=by_acc) == ["best", "good"]
    page = MlflowClient().search_logged_models([experiment_id], max_results=3, order_by=by_acc)
    assert names(page) == ["best", "good", "bad"] and page.token
    rest = MlflowClient().search_logged_models([experiment_id], max_results=3, order_by=by_acc, page_token=page.token)
    assert names(rest) == ["unmeasured"] and not rest.token
    with pytest.raises(MlflowException, match="Invalid attribute key 'size'"):
        search(filter_string="size > 3")


def log_inputs_requests(tracking: RunningGateway) -> int:
    return sum(1 for line in tracking.log_lines() if line.get("path") == f"{API}/runs/log-inputs")


def test_a_runs_model_inputs_are_kept(tracking: RunningGateway) -> None:
    """The client logs a model as a run's input with its first metric, and not again once the run shows it."""
    client = MlflowClient()
    experiment_id = client.create_experiment(f"inputs-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(experiment_id).info.run_id
    model = mlflow.initialize_logged_model(name="used", experiment_id=experiment_id)
    before = log_inputs_requests(tracking)
    for step in range(3):
        mlflow.log_metric("loss", 1 / (step + 1), step=step, model_id=model.model_id, run_id=run_id)
    assert [i.model_id for i in client.get_run(run_id).inputs.model_inputs] == [model.model_id]
    sentinel = f"{API}/logged-models/m-sentinel-{uuid.uuid4().hex}"  # its line comes after the others'
    assert requests.get(f"{tracking.url}{sentinel}", timeout=30).status_code == 404
    tracking.wait_for_log(path=sentinel)
    assert log_inputs_requests(tracking) == before + 1
    (found,) = client.search_runs([experiment_id])
    assert [i.model_id for i in found.inputs.model_inputs] == [model.model_id]
    assert post(tracking, "/runs/log-inputs", {"run_id": run_id, "models": [{"model_id": model.model_id}]}).ok
    assert [i.model_id for i in client.get_run(run_id).inputs.model_inputs] == [model.model_id]


def test_set_active_model_finds_or_creates_the_model_by_name(tracking: RunningGateway) -> None:
    mlflow.set_experiment(f"active-{uuid.uuid4().hex[:8]}")
    with mlflow.set_active_model(name="agent") as active:
        assert mlflow.get_active_model_id() == active.model_id
        with mlflow.start_run() as run:
            mlflow.log_metric("score", 0.5)
    with mlflow.set_active_model(name="agent") as again:
        assert again.model_id == active.model_id
    assert mlflow.get_active_model_id() is None
    model = mlflow.get_logged_model(active.model_id)
    assert [(m.key, m.value, m.run_id) for m in model.metrics or []] == [("score", 0.5, run.info.run_id)]
    inputs = MlflowClient().get_run(run.info.run_id).inputs.model_inputs
    assert [i.model_id for i in inputs] == [active.model_id]


def test_a_deleted_model_is_read_only_with_allow_deleted(tracking: RunningGateway) -> None:
    mlflow.set_experiment(f"deleted-{uuid.uuid4().hex[:8]}")
    model = mlflow.initialize_logged_model(name="gone", tags={"k": "v"})
    MlflowClient().delete_logged_model(model.model_id)
    with pytest.raises(MlflowException, match=f"Logged model with ID '{model.model_id}' not found"):
        mlflow.get_logged_model(model.model_id)
    url = f"{tracking.url}{API}/logged-models/{model.model_id}"
    assert requests.get(url, timeout=30).status_code == 404
    assert requests.get(url, params={"allow_deleted": "false"}, timeout=30).status_code == 404
    for flag in ("true", "True"):
        found = requests.get(url, params={"allow_deleted": flag}, timeout=30)
        assert found.status_code == 200, found.text
        assert found.json()["model"]["info"]["model_id"] == model.model_id  # MLflow's info has no lifecycle stage
    store = MlflowClient()._tracking_client.store  # the stock RestStore's own flag
    assert store.get_logged_model(model.model_id, allow_deleted=True).tags["k"] == "v"
    assert names(mlflow.search_logged_models(output_format="list")) == []  # search never shows it
    bad = requests.get(url, params={"allow_deleted": "yes"}, timeout=30)
    assert (bad.status_code, bad.json()["message"]) == (400, "Invalid boolean value: yes, must be 'true' or 'false'.")


# -- raw REST: search semantics MLflow's client does not reach, and every refusal ----------------


@pytest.fixture
def models(tracking: RunningGateway) -> dict[str, str]:
    """An experiment with three models: 'Alpha' (READY, acc 0.9 on ds/d1 and 0.1 on ds/d2), 'alpha2'
    (acc 0.5, no dataset) and 'beta' (no metric); returns their ids and the experiment's."""
    client = MlflowClient()
    experiment_id = client.create_experiment(f"rest-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(experiment_id).info.run_id
    ids = {"experiment": experiment_id, "run": run_id}
    for name in ("Alpha", "alpha2", "beta"):
        created = post(tracking, "/logged-models", {"experiment_id": experiment_id, "name": name, "model_type": "clf"})
        ids[name] = created.json()["model"]["info"]["model_id"]
    requests.patch(
        f"{tracking.url}{API}/logged-models/{ids['Alpha']}",
        json={"model_id": ids["Alpha"], "status": "LOGGED_MODEL_READY"},
        timeout=30,
    ).raise_for_status()
    metrics = [
        {"key": "acc", "value": 0.9, "timestamp": 2, "step": 0, "model_id": ids["Alpha"], "dataset_name": "ds"}
        | {"dataset_digest": "d1"},
        {"key": "acc", "value": 0.1, "timestamp": 1, "step": 0, "model_id": ids["Alpha"], "dataset_name": "ds"}
        | {"dataset_digest": "d2"},
        {"key": "acc", "value": 0.5, "timestamp": 3, "step": 0, "model_id": ids["alpha2"]},
    ]
    assert post(tracking, "/runs/log-batch", {"run_id": run_id, "metrics": metrics}).ok
    return ids


def search_names(tracking: RunningGateway, ids: dict[str, str], **body: Any) -> list[str]:
    found = post(tracking, "/logged-models/search", {"experiment_ids": [ids["experiment"]], **body})
    assert found.status_code == 200, found.text
    return [model["info"]["name"] for model in found.json().get("models", [])]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"filter": "name LIKE 'a%'"}, ["alpha2"]),  # case-sensitive on both databases, as MLflow's
        ({"filter": "name LIKE 'A%'"}, ["Alpha"]),
        ({"filter": "name ILIKE 'a%'"}, ["alpha2", "Alpha"]),
        ({"filter": "name LIKE 'alpha_'"}, ["alpha2"]),
        ({"filter": "name = 'ALPHA'"}, []),
        ({"filter": "name IN ('Alpha', 'beta')"}, ["beta", "Alpha"]),
        ({"filter": "name NOT IN ('Alpha', 'beta')"}, ["alpha2"]),
        ({"filter": "status = 'LOGGED_MODEL_READY'"}, ["Alpha"]),
        ({"filter": "status = 2"}, ["Alpha"]),  # MLflow's enum number
        ({"filter": "status != 'LOGGED_MODEL_READY'"}, ["beta", "alpha2"]),
        ({"filter": "attributes.model_type = 'clf' AND metrics.acc >= 0.5"}, ["alpha2", "Alpha"]),
        ({"filter": "metrics.acc < 0.2"}, ["Alpha"]),  # any linked point
        ({"filter": "creation_time > 0 AND last_updated_timestamp >= 0"}, ["beta", "alpha2", "Alpha"]),
        ({"filter": "creation_time < 0"}, []),
        ({"datasets": [{"dataset_name": "ds"}]}, ["Alpha"]),
        ({"datasets": [{"dataset_name": "ds", "dataset_digest": "d2"}], "filter": "metrics.acc > 0.5"}, []),
        ({"datasets": [{"dataset_name": "ds", "dataset_digest": "d1"}], "filter": "metrics.acc > 0.5"}, ["Alpha"]),
        ({"order_by": [{"field_name": "metrics.acc", "ascending": False}]}, ["Alpha", "alpha2", "beta"]),
        ({"order_by": [{"field_name": "metrics.acc"}]}, ["alpha2", "Alpha", "beta"]),  # Alpha's latest: 0.9
        (  # the latest point on the dataset asked for: Alpha's 0.1 on ds/d2; the others have none there
            {"order_by": [{"field_name": "metrics.acc", "dataset_name": "ds", "dataset_digest": "d2"}]},
            ["Alpha", "beta", "alpha2"],
        ),
        ({"order_by": [{"field_name": "metrics.acc", "dataset_digest": "d2"}]}, ["Alpha", "beta", "alpha2"]),
        ({"order_by": [{"field_name": "metrics.acc", "dataset_name": "nope"}]}, ["beta", "alpha2", "Alpha"]),
        ({"order_by": [{"field_name": "name"}]}, ["Alpha", "alpha2", "beta"]),
        ({"order_by": [{"field_name": "creation_time", "ascending": True}]}, ["Alpha", "alpha2", "beta"]),
        ({"order_by": [{"field_name": "status", "ascending": False}]}, ["Alpha", "beta", "alpha2"]),
        ({"max_results": 1}, ["beta"]),
        ({"max_results": 0}, ["beta", "alpha2", "Alpha"]),  # MLflow's 100
    ],
)
def test_search_semantics(
    tracking: RunningGateway, models: dict[str, str], body: dict[str, Any], expected: list[str]
) -> None:
    assert search_names(tracking, models, **body) == expected


def test_search_pages_follow_the_search_they_belong_to(tracking: RunningGateway, models: dict[str, str]) -> None:
    by_name = {"order_by": [{"field_name": "name"}], "max_results": 2}
    first = post(tracking, "/logged-models/search", {"experiment_ids": [models["experiment"]], **by_name}).json()
    assert [m["info"]["name"] for m in first["models"]] == ["Alpha", "alpha2"]
    body = {"experiment_ids": [models["experiment"]], **by_name, "page_token": first["next_page_token"]}
    second = post(tracking, "/logged-models/search", body).json()
    assert [m["info"]["name"] for m in second["models"]] == ["beta"] and "next_page_token" not in second
    other = post(tracking, "/logged-models/search", {**body, "order_by": [{"field_name": "name", "ascending": False}]})
    assert other.status_code == 400
    assert "continues another search" in other.json()["message"]
    assert post(tracking, "/logged-models/search", {"experiment_ids": []}).json() == {}


MISSING_IDS = (
    "Missing value for required parameter 'experiment_ids'. See the API docs for more information about request "
    "parameters."
)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, MISSING_IDS),
        (
            {"experiment_ids": "2"},
            "Invalid value \"2\" for parameter 'experiment_ids' supplied:  Hint: Value was of type 'str'. "
            "See the API docs for more information about request parameters.",
        ),
        ({"experiment_ids": ["abc"]}, "Invalid value \"abc\" for parameter 'experiment_ids'"),
        ({"filter": "metrics.acc > 'a'"}, "Expected a numeric value for metrics.acc"),
        ({"filter": "foo = 'x'"}, "Invalid attribute key 'foo' specified"),
        ({"filter": "run_id = 'x'"}, "Invalid attribute key 'run_id' specified"),
        (
            {"filter": "name > 'a'"},
            "Invalid comparison operator for attributes.name: '>'. "
            "Expected one of ('=', '!=', 'LIKE', 'ILIKE', 'IN', 'NOT IN').",
        ),
        (
            {"filter": "tag.t = 'v'"},
            "Invalid entity type: 'tag'. Expected one of ['attributes', 'metrics', 'params', 'tags'].",
        ),
        (
            {"filter": "name = 'm1' OR params.p = 'v'"},
            "Invalid filter string: \"name = 'm1' OR params.p = 'v'\". Expected a list of comparisons separated by "
            "'AND' (e.g. 'metrics.loss > 0.1 AND params.lr = 0.01').",
        ),
        ({"filter": "metrics.acc LIKE '1%'"}, "Invalid comparison operator for metrics.acc: 'LIKE'"),
        ({"filter": "creation_time > 1.5"}, "not a whole number of milliseconds"),
        ({"filter": "experiment_id LIKE '1%'"}, "Invalid comparison operator for attributes.experiment_id"),
        ({"filter": "tags.t IS NULL"}, "Invalid comparison operator for tags.t: 'IS NULL'"),
        ({"order_by": [{"field_name": "bogus"}]}, "Invalid order by field name: bogus"),
        ({"order_by": [{"field_name": "params.p"}]}, "field name: params.p. Only metrics are supported."),
        ({"order_by": [{"field_name": "name", "dataset_name": "ds"}]}, "apply to metrics.<key> fields only"),
        ({"order_by": [{"field_name": "name", "ascending": "no"}]}, "it must be true or false"),
        ({"order_by": ["name"]}, "every entry must be a JSON object"),
        ({"order_by": [{"ascending": True}]}, "needs a 'field_name'"),
        ({"datasets": [{"dataset_digest": "d1"}]}, "`dataset_name` in the `datasets` clause must be specified."),
        ({"max_results": -1}, "'max_results'"),
        ({"max_results": "many"}, "'max_results'"),
        ({"page_token": "garbage"}, "Invalid page_token"),
    ],
)
def test_search_refusals_are_clear_400s(
    tracking: RunningGateway, models: dict[str, str], body: dict[str, Any], message: str
) -> None:
    if body and "experiment_ids" not in body:
        body = {"experiment_ids": [models["experiment"]], **body}
    refused = post(tracking, "/logged-models/search", body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in refused.json()["message"]


def model_params(tracking: RunningGateway, model_id: str) -> dict[str, str]:
    model = requests.get(f"{tracking.url}{API}/logged-models/{model_id}", timeout=30).json()["model"]
    return {p["key"]: p["value"] for p in model["data"].get("params", [])}


def test_params_refusals_write_nothing(tracking: RunningGateway, models: dict[str, str]) -> None:
    model_id = models["beta"]
    url = f"/logged-models/{model_id}/params"
    assert post(tracking, url, {"model_id": model_id, "params": [{"key": "p", "value": "1"}]}).json() == {}
    assert post(tracking, url, {"params": [{"key": "p", "value": "1"}]}).json() == {}  # idempotent
    refusals: list[tuple[dict[str, Any], str]] = [
        (
            {"params": [{"key": "new", "value": "x"}, {"key": "p", "value": "2"}]},
            f"Changing param values is not allowed. Param with key='p' was already logged with value='1' for "
            f"logged model ID='{model_id}'. Attempted logging new value '2'.",
        ),
        ({"params": [{"key": "new", "value": "x"}, {"key": "new", "value": "y"}]}, "given twice"),
        ({"params": [{"key": f"k{i}", "value": "v"} for i in range(101)]}, "at most 100 params"),
        ({"model_id": models["Alpha"], "params": [{"key": "new", "value": "x"}]}, "the body names model"),
        ({"params": [{"key": "new", "value": "x"}, {"key": "", "value": "y"}]}, "'key'"),
        ({"params": [{"key": "new", "value": "x" * 6001}]}, "exceeds the maximum length of 6000"),
        ({"params": "new=x"}, "Invalid value \"new=x\" for parameter 'params'"),
    ]
    for body, message in refusals:
        refused = post(tracking, url, body)
        assert refused.status_code == 400, refused.text
        assert message in refused.json()["message"], refused.json()
    assert model_params(tracking, model_id) == {"p": "1"}
    unknown = post(tracking, "/logged-models/m-nope/params", {"params": [{"key": "a", "value": "b"}]})
    assert (unknown.status_code, unknown.json()) == (
        404,
        {
            "error_code": "RESOURCE_DOES_NOT_EXIST",
            "message": "Logged model with ID 'm-nope' not found.",
            "sqlstate": "KAM00",
            "error_class": "RESOURCE_NOT_FOUND",
        },
    )


def test_model_input_refusals_write_nothing(tracking: RunningGateway, models: dict[str, str]) -> None:
    run_id = MlflowClient().create_run(models["experiment"]).info.run_id
    dataset = {"dataset": {"name": "ds", "digest": "d1", "source_type": "code", "source": "x"}}
    for body, status in (
        ({"models": [{"model_id": models["Alpha"]}, {"model_id": "m-nope"}], "datasets": [dataset]}, 404),
        ({"models": [{"model_id": models["Alpha"]}, {}]}, 400),
        ({"models": [{"model_id": models["Alpha"]}], "datasets": [{"dataset": {"name": "no digest"}}]}, 400),
    ):
        refused = post(tracking, "/runs/log-inputs", {"run_id": run_id, **body})
        assert refused.status_code == status, refused.text
    inputs = MlflowClient().get_run(run_id).inputs
    assert (inputs.model_inputs, inputs.dataset_inputs) == ([], [])


def test_create_and_tag_refusals(tracking: RunningGateway, models: dict[str, str]) -> None:
    experiment_id = models["experiment"]
    for name in ("a/b", "a:b", "a.b", "50%", 'say "hi"', "it's"):
        refused = post(tracking, "/logged-models", {"experiment_id": experiment_id, "name": name})
        assert refused.status_code == 400, name
        assert refused.json()["message"] == (
            f"Invalid model name ({name!r}) provided. Model name must be a non-empty string and cannot contain the "
            "following characters: ('/', ':', '.', '%', '\"', \"'\")"
        )
    too_long = post(tracking, "/logged-models", {"experiment_id": experiment_id, "name": "n" * 501})
    assert too_long.status_code == 400
    assert search_names(tracking, models) == ["beta", "alpha2", "Alpha"]  # nothing was created
    tags = f"{tracking.url}{API}/logged-models/{models['beta']}/tags"
    assert requests.patch(tags, json={"tags": [{"key": "keep", "value": "1"}]}, timeout=30).ok
    missing_tag = requests.delete(f"{tags}/nope", timeout=30)
    assert (missing_tag.status_code, missing_tag.json()["message"]) == (
        404,
        f"No tag with key 'nope' found for model with ID '{models['beta']}'.",
    )
    info = requests.get(f"{tracking.url}{API}/logged-models/{models['beta']}", timeout=30).json()["model"]["info"]
    assert info["tags"] == [{"key": "keep", "value": "1"}]
    assert requests.delete(f"{tags}/keep", timeout=30).json() == {}


def test_artifact_directories_of_a_model(tracking: RunningGateway, models: dict[str, str]) -> None:
    model_id = models["Alpha"]
    url = f"{tracking.url}{API}/logged-models/{model_id}/artifacts/directories"
    root = requests.get(url, timeout=30).json()
    assert root == {"root_uri": f"mlflow-artifacts:/{models['experiment']}/models/{model_id}/artifacts"}
    for path, data in (("MLmodel", b"flavors: {}\n"), ("data/weights.bin", b"\x00" * 10)):
        stored = f"{models['experiment']}/models/{model_id}/artifacts/{path}"
        requests.put(tracking.artifact_url(stored), data=data, timeout=30).raise_for_status()
    assert requests.get(url, timeout=30).json()["files"] == [
        {"path": "MLmodel", "is_dir": False, "file_size": 12},
        {"path": "data", "is_dir": True},
    ]
    inside = requests.get(url, params={"artifact_directory_path": "data"}, timeout=30).json()
    assert inside["files"] == [{"path": "data/weights.bin", "is_dir": False, "file_size": 10}]
    assert "files" not in requests.get(url, params={"artifact_directory_path": "nothing"}, timeout=30).json()
    for bad in ("../x", "data/../../x", "/etc"):
        refused = requests.get(url, params={"artifact_directory_path": bad}, timeout=30)
        assert refused.status_code == 400, bad
        assert refused.json()["message"].startswith("Invalid path")
    unknown = requests.get(f"{tracking.url}{API}/logged-models/m-nope/artifacts/directories", timeout=30)
    assert unknown.status_code == 404
    ajax = f"{tracking.url}/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/directories"
    assert requests.get(ajax, timeout=30).json()["root_uri"] == root["root_uri"]
