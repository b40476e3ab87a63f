"""Deployment modes with the stock client: split tracking/artifacts servers, direct-to-bucket logging,
autolog with a logged model, and the startup errors of a mode that lacks what it needs."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from tests.conftest import s3_client
from tests.gateway_process import gateway_command, run_gateway
from tests.postgres_server import create_database
from tests.storage_servers import S3Server


@pytest.fixture(autouse=True)
def no_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


def test_split_deployment_tracking_and_artifacts_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with run_gateway(tmp_path / "artifacts", "--artifacts-only") as artifacts:
        root = f"mlflow-artifacts://127.0.0.1:{artifacts.port}/root"
        with run_gateway(
            tmp_path / "tracking",
            "--no-serve-artifacts",
            "--default-artifact-root",
            root,
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'split.db'}",
        ) as tracking:
            monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.url)
            mlflow.set_tracking_uri(tracking.url)
            mlflow.set_experiment("split")
            (tmp_path / "model.txt").write_text("weights")
            with mlflow.start_run() as run:
                mlflow.log_param("p", "1")
                mlflow.log_artifact(str(tmp_path / "model.txt"), "m")
            assert run.info.artifact_uri.startswith(root)
            stored = list((artifacts.destination / "root").rglob("model.txt"))
            assert [path.read_text() for path in stored] == ["weights"]
            downloaded = mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="m/model.txt", dst_path=str(tmp_path / "dl")
            )
            assert Path(downloaded).read_text() == "weights"
            tracking_paths = {str(line.get("path")) for line in tracking.log_lines()}
            assert not any("mlflow-artifacts" in path for path in tracking_paths)
            assert not tracking.destination.exists()


def test_direct_to_bucket_logging(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_gateway(tmp_path, "--backend-store-uri", f"sqlite:///{tmp_path / 'direct.db'}") as gateway:
        for name, value in s3_server.env().items():  # the client's own storage credentials
            monkeypatch.setenv(name, value)
        mlflow.set_tracking_uri(gateway.url)
        experiment_id = mlflow.create_experiment(
            f"direct-{uuid.uuid4().hex[:6]}", artifact_location=f"s3://{s3_bucket}/exp"
        )
        (tmp_path / "direct.txt").write_text("to the bucket")
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_artifact(str(tmp_path / "direct.txt"))
        assert run.info.artifact_uri == f"s3://{s3_bucket}/exp/{run.info.run_id}/artifacts"
        key = f"exp/{run.info.run_id}/artifacts/direct.txt"
        assert s3_client(s3_server).get_object(Bucket=s3_bucket, Key=key)["Body"].read() == b"to the bucket"
        assert not any("direct.txt" in str(line.get("path")) for line in gateway.log_lines())


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_sklearn_autolog_and_load_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, database: str
) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    store = f"sqlite:///{tmp_path / 'autolog.db'}"
    if database == "postgresql":
        store = create_database(request.getfixturevalue("postgres_dsn"), f"a{uuid.uuid4().hex[:12]}")
    with run_gateway(tmp_path, "--backend-store-uri", store) as gateway:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", gateway.url)
        mlflow.set_tracking_uri(gateway.url)
        mlflow.set_experiment("autolog")
        mlflow.sklearn.autolog(log_input_examples=False, log_model_signatures=True)
        features = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]] * 5)
        labels = np.array([0, 1, 0, 1] * 5)
        with mlflow.start_run() as run:
            LogisticRegression().fit(features, labels)
        mlflow.sklearn.autolog(disable=True)
        client = MlflowClient()
        logged = client.get_run(run.info.run_id)
        assert "training_accuracy_score" in logged.data.metrics
        assert logged.data.params["C"] == "1.0"
        model_ids = [output.model_id for output in logged.outputs.model_outputs]
        assert len(model_ids) == 1
        model = client.get_logged_model(model_ids[0])
        assert model.status == "READY" or str(model.status).endswith("READY")
        loaded = mlflow.pyfunc.load_model(f"models:/{model_ids[0]}")
        assert list(loaded.predict(np.array([[0.0, 1.0], [1.0, 0.0]]))) == [0, 1]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--no-serve-artifacts"], "--no-serve-artifacts needs --default-artifact-root"),
        (["--backend-store-uri", "mysql://x/y"], "unsupported backend store 'mysql'"),
        (["--backend-store-uri", "sqlite://"], "in-memory SQLite"),
        (["--backend-store-uri", "postgresql://nobody@127.0.0.1:9/x"], "backend store"),
    ],
)
def test_mode_and_store_errors_are_one_line(tmp_path: Path, args: list[str], fragment: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ARTIFACT_GATEWAY_"))}
    result = subprocess.run(
        gateway_command("serve", "--port", "0", *args),
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert fragment in result.stderr
