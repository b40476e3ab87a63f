"""MLflow 3 logged models as the stock client uses them, on SQLite and PostgreSQL: log_model inside a run,
metrics linked to models, model params, search by metric; no metric point stored twice."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from tests.gateway_process import RunningGateway, run_gateway
from tests.postgres_server import create_database


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tracking(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    workdir = tmp_path_factory.mktemp(f"models-{request.param}")
    if request.param == "sqlite":
        store = f"sqlite:///{workdir / 'mlruns.db'}"
    else:
        store = create_database(request.getfixturevalue("postgres_dsn"), f"lm{uuid.uuid4().hex[:12]}")
    with run_gateway(workdir, "--backend-store-uri", store) as running:
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
