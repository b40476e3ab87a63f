"""Fixtures of the tracing tests: a gateway on SQLite and on PostgreSQL, the stock client pointed at it,
and a listener failing any test whose client warned about sending a trace or its spans."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import mlflow
import pytest

from tests.gateway_process import RunningGateway, run_gateway
from tests.postgres_server import store_uri_for


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tracking(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    workdir = tmp_path_factory.mktemp(f"traces-{request.param}")
    with run_gateway(workdir, "--backend-store-uri", store_uri_for(request, workdir), "--workers", "2") as running:
        yield running


@pytest.fixture(autouse=True)
def client_env(tracking: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    mlflow.set_tracking_uri(tracking.url)
    yield
    mlflow.set_experiment(experiment_id="0")


def new_experiment() -> str:
    experiment_id = mlflow.create_experiment(f"traces-{uuid.uuid4().hex[:10]}")
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(autouse=True)
def no_export_warning() -> Iterator[Records]:
    """MLflow's logger does not propagate (caplog would see nothing): listen on it directly, and fail a
    test whose client warned about sending a trace or its spans."""
    records = Records()
    logger = logging.getLogger("mlflow")
    logger.addHandler(records)
    yield records
    logger.removeHandler(records)
    assert [m for m in records.messages if "trace" in m.lower() or "span" in m.lower()] == []
