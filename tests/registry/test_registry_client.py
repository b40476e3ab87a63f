"""The model registry as the stock client uses it, on SQLite and PostgreSQL: MLflow's Tracking
Quickstart end to end (log_model with registered_model_name, load by version and by alias through the
artifact proxy), every registry call of MlflowClient with what comes back, the refusals (unknown
name 404, duplicate 400, a refused source 400) with nothing half-written, and eight clients
registering versions of one model at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import mlflow
import numpy as np
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from sklearn import datasets
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

from tests.gateway_process import RunningGateway, run_gateway
from tests.postgres_server import store_uri_for


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tracking(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    workdir = tmp_path_factory.mktemp(f"registry-{request.param}")
    with run_gateway(workdir, "--backend-store-uri", store_uri_for(request, workdir)) as running:
        yield running


@pytest.fixture(autouse=True)
def client_env(tracking: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(tracking.url)
    mlflow.set_registry_uri(tracking.url)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def small_model() -> LogisticRegression:
    return LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


def logged_version(name: str) -> str:
    """A logged model registered as a new version of `name`: its version number."""
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(small_model(), name="model", registered_model_name=name)
    assert info.registered_model_version is not None
    return str(info.registered_model_version)


def test_the_tracking_quickstart(tracking: RunningGateway) -> None:
    """mlflow.org's Tracking Quickstart, as written (but for `multi_class`, which this scikit-learn no
    longer takes), then loading the registered model by version and by alias."""
    X, y = datasets.load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    params = {"solver": "lbfgs", "max_iter": 1000, "random_state": 8888}
    lr = LogisticRegression(**params)
    lr.fit(X_train, y_train)
    y_pred = lr.predict(X_test)
    accuracy = accuracy_score(y_test, y_pred)
    mlflow.set_experiment(unique("MLflow Quickstart"))
    name = "tracking-quickstart"
    with mlflow.start_run() as run:
        mlflow.log_params(params)
        mlflow.log_metric("accuracy", accuracy)
        mlflow.set_tag("Training Info", "Basic LR model for iris data")
        signature = infer_signature(X_train, lr.predict(X_train))
        model_info = mlflow.sklearn.log_model(
            sk_model=lr,
            name="iris_model",
            signature=signature,
            input_example=X_train,
            registered_model_name=name,
        )
    client = MlflowClient()
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    assert str(model_info.registered_model_version) == "1"
    logged = mlflow.pyfunc.load_model(model_info.model_uri).predict(X_test)
    by_version = mlflow.pyfunc.load_model(f"models:/{name}/1").predict(X_test)
    assert np.array_equal(by_version, logged)
    assert np.array_equal(by_version, y_pred)
    client.set_registered_model_alias(name, "champion", "1")
    by_alias = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(X_test)
    assert np.array_equal(by_alias, logged)
    version = client.get_model_version(name, "1")
    assert version.run_id == run.info.run_id
    assert version.source == f"models:/{model_info.model_id}"
    assert version.status == "READY"
    assert version.aliases == ["champion"]
    uri = client.get_model_version_download_uri(name, "1")
    assert uri == mlflow.get_logged_model(model_info.model_id).artifact_location
    assert uri.startswith("mlflow-artifacts:/")


def test_models_create_get_update_rename_search_delete(tracking: RunningGateway) -> None:
    client = MlflowClient()
    name = unique("reg")
    created = client.create_registered_model(name, tags={"team": "a"}, description="first")
    assert (created.name, created.description, created.tags) == (name, "first", {"team": "a"})
    assert created.creation_timestamp == created.last_updated_timestamp > 0
    updated = client.update_registered_model(name, description="second")
    assert updated.description == "second"
    client.set_registered_model_tag(name, "stage", "dev")
    client.delete_registered_model_tag(name, "team")
    assert client.get_registered_model(name).tags == {"stage": "dev"}
    assert logged_version(name) == "1"
    client.rename_registered_model(name, f"{name}-renamed")
    assert client.get_registered_model(f"{name}-renamed").description == "second"
    assert [v.version for v in client.search_model_versions(f"name = '{name}-renamed'")] == ["1"]
    with pytest.raises(MlflowException, match="not found") as missing:
        client.get_registered_model(name)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    found = client.search_registered_models(filter_string=f"name LIKE '{name}%'")
    assert [m.name for m in found] == [f"{name}-renamed"]
    assert [m.name for m in client.search_registered_models(filter_string="tags.stage = 'dev'")] == [f"{name}-renamed"]
    client.delete_registered_model(f"{name}-renamed")
    assert client.search_registered_models(filter_string=f"name LIKE '{name}%'") == []
    assert client.search_model_versions(f"name = '{name}-renamed'") == []


def test_search_orders_and_pages(tracking: RunningGateway) -> None:
    client = MlflowClient()
    prefix = unique("page")
    names = [f"{prefix}-{i}" for i in range(5)]
    for item in names:
        client.create_registered_model(item)
    first = client.search_registered_models(
        filter_string=f"name LIKE '{prefix}-%'", max_results=2, order_by=["name DESC"]
    )
    assert [m.name for m in first] == names[::-1][:2]
    assert first.token
    rest = client.search_registered_models(
        filter_string=f"name LIKE '{prefix}-%'", max_results=10, order_by=["name DESC"], page_token=first.token
    )
    assert [m.name for m in rest] == names[::-1][2:]
    assert not rest.token
    upper = client.search_registered_models(filter_string=f"name ILIKE '{prefix.upper()}-%'")
    assert len(upper) == 5
    assert client.search_registered_models(filter_string=f"name LIKE '{prefix.upper()}-%'") == []
    with pytest.raises(MlflowException, match="Invalid attribute key") as bad:
        client.search_registered_models(filter_string="owner = 'x'")
    assert bad.value.error_code == "INVALID_PARAMETER_VALUE"


def test_versions_stages_aliases_tags_and_search(tracking: RunningGateway) -> None:
    client = MlflowClient()
    name = unique("ver")
    client.create_registered_model(name)
    runs = []
    for _ in range(3):
        with mlflow.start_run() as run:
            mlflow.sklearn.log_model(small_model(), name="model", registered_model_name=name)
        runs.append(run.info.run_id)
    versions = client.search_model_versions(f"name = '{name}'")
    assert [v.version for v in versions] == ["3", "2", "1"]  # newest update first
    assert [
        v.version
        for v in client.search_model_versions(
            f"name = '{name}' AND version_number >= 2", order_by=["version_number ASC"]
        )
    ] == ["2", "3"]
    assert [v.version for v in client.search_model_versions(f"run_id IN ('{runs[0]}', '{runs[2]}')")] == ["3", "1"]
    assert [
        v.version
        for v in client.search_model_versions(
            f"name = '{name}' AND source_path LIKE 'models:/m-%'", order_by=["version_number DESC"]
        )
    ] == ["3", "2", "1"]

    client.transition_model_version_stage(name, "1", "Production")
    moved = client.transition_model_version_stage(name, "2", "production", archive_existing_versions=True)
    assert moved.current_stage == "Production"
    assert client.get_model_version(name, "1").current_stage == "Archived"
    latest = {v.current_stage: v.version for v in client.get_latest_versions(name)}
    assert latest == {"Archived": "1", "Production": "2", "None": "3"}
    assert [v.version for v in client.get_latest_versions(name, stages=["Production"])] == ["2"]
    with pytest.raises(MlflowException, match="not an Active stage"):
        client.transition_model_version_stage(name, "3", "Archived", archive_existing_versions=True)

    client.set_registered_model_alias(name, "champion", "2")
    client.set_registered_model_alias(name, "challenger", "3")
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert client.get_registered_model(name).aliases == {"champion": "2", "challenger": "3"}
    client.set_registered_model_alias(name, "champion", "3")
    assert sorted(client.get_model_version(name, "3").aliases) == ["challenger", "champion"]
    client.delete_registered_model_alias(name, "challenger")
    assert client.get_model_version(name, "3").aliases == ["champion"]
    with pytest.raises(MlflowException, match="reserved"):
        client.set_registered_model_alias(name, "latest", "1")

    client.set_model_version_tag(name, "3", "validated", "yes")
    assert client.get_model_version(name, "3").tags == {"validated": "yes"}
    assert [v.version for v in client.search_model_versions(f"name = '{name}' AND tags.validated = 'yes'")] == ["3"]
    client.delete_model_version_tag(name, "3", "validated")
    assert client.get_model_version(name, "3").tags == {}
    described = client.update_model_version(name, "3", description="the best")
    assert described.description == "the best"

    client.delete_model_version(name, "3")
    with pytest.raises(MlflowException, match=r"Model Version \(name=.*, version=3\) not found"):
        client.get_model_version(name, "3")
    assert client.get_registered_model(name).aliases == {}  # the alias went with its version
    assert logged_version(name) == "4"  # a deleted number is not given out again


def test_refusals_leave_nothing_behind(tracking: RunningGateway) -> None:
    client = MlflowClient()
    name = unique("bad")
    client.create_registered_model(name)
    with pytest.raises(MlflowException, match=rf"Registered Model \(name={name}\) already exists") as duplicate:
        client.create_registered_model(name)
    assert duplicate.value.error_code == "RESOURCE_ALREADY_EXISTS"
    for call in (
        lambda: client.get_registered_model(f"{name}-nope"),
        lambda: client.delete_registered_model(f"{name}-nope"),
        lambda: client.create_model_version(f"{name}-nope", "models:/m-0123", run_id=None),
    ):
        with pytest.raises(MlflowException, match=rf"Registered Model with name={name}-nope not found") as unknown:
            call()
        assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    other = unique("other")
    client.create_registered_model(other)
    with pytest.raises(MlflowException, match="already exists"):
        client.rename_registered_model(other, name)
    assert client.get_registered_model(other).name == other

    api = f"{tracking.url}/api/2.0/mlflow"
    with mlflow.start_run() as run:
        pass
    for source in (
        "/etc/passwd",
        "file:///etc",
        "../../etc",
        "http://elsewhere.example/model",
        "mlflow-artifacts://elsewhere.example/1/x",
        "mlflow-artifacts:/1/someone-elses/artifacts",
        f"{run.info.artifact_uri}/../../other",
        f"runs:/{run.info.run_id}/../../x",
        "models:/m-doesnotexist",
        "s3://bucket/model",
    ):
        response = requests.post(
            f"{api}/model-versions/create", json={"name": name, "source": source, "run_id": run.info.run_id}, timeout=30
        )
        assert response.status_code == 400, (source, response.text)
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert response.json()["message"].startswith(f"Invalid model version source: '{source}'")
    assert client.search_model_versions(f"name = '{name}'") == []
    assert client.get_registered_model(name).latest_versions == []
    # a path inside the run's own artifacts is fine, as runs:/ is
    inside = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    assert inside.version == "1"
    by_runs = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    assert by_runs.version == "2"
    assert client.get_model_version_download_uri(name, "2") == f"{run.info.artifact_uri}/model"


def test_eight_clients_register_at_once(tracking: RunningGateway) -> None:
    client = MlflowClient()
    name = unique("race")
    client.create_registered_model(name)
    with mlflow.start_run() as run:
        model = mlflow.sklearn.log_model(small_model(), name="model")

    def register(_: int) -> str:
        return str(
            MlflowClient().create_model_version(name, f"models:/{model.model_id}", run_id=run.info.run_id).version
        )

    with ThreadPoolExecutor(8) as pool:
        numbers = sorted(int(v) for v in pool.map(register, range(8)))
    assert numbers == list(range(1, 9))
    stored = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    assert stored == list(range(1, 9))
