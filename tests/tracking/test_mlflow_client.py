"""The stock `mlflow` client (pinned in the test extras) against the real gateway."""

from __future__ import annotations

import filecmp
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from tests.gateway_process import RunningGateway, run_gateway


@pytest.fixture(autouse=True)
def tracking_uri(gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", gateway.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a wrong status must fail, not be retried
    yield


def make_tree(root: Path) -> Path:
    files = {
        "MLmodel": b"artifact_path: model\nflavors: {}\n",
        "model.pkl": os.urandom(3 * 1024 * 1024 + 1),
        "conda.yaml": b"name: env\n",
        "data/train.csv": b"a,b\n1,2\n",
        "data/nested/deep/weights.bin": os.urandom(70_000),
        "data/empty.txt": b"",
        "name with spaces & ü.txt": b"odd names survive",
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def same_tree(left: Path, right: Path) -> bool:
    comparison = filecmp.dircmp(left, right)
    if comparison.left_only or comparison.right_only or comparison.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, comparison.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(same_tree(left / sub, right / sub) for sub in comparison.common_dirs)


@pytest.mark.parametrize("uri_form", ["separate-host", "same-host"])
def test_log_list_download_delete_round_trip(
    gateway: RunningGateway, fresh_dir: str, tmp_path: Path, uri_form: str
) -> None:
    root = f"{fresh_dir}/0/run-1/artifacts"
    uri = (
        f"mlflow-artifacts://127.0.0.1:{gateway.port}/{root}"
        if uri_form == "separate-host"
        else f"mlflow-artifacts:/{root}"
    )
    repo = get_artifact_repository(uri)
    tree = make_tree(tmp_path / "tree")
    single = tmp_path / "metrics.json"
    single.write_bytes(b'{"accuracy": 0.91}')

    repo.log_artifact(str(single))
    repo.log_artifact(str(single), "reports/daily")
    repo.log_artifacts(str(tree), "model")

    assert (gateway.destination / root / "metrics.json").read_bytes() == single.read_bytes()
    assert same_tree(tree, gateway.destination / root / "model")

    top = {(info.path, info.is_dir, info.file_size) for info in repo.list_artifacts()}
    assert top == {("metrics.json", False, 18), ("model", True, None), ("reports", True, None)}
    model = {info.path for info in repo.list_artifacts("model")}
    assert model == {
        "model/MLmodel",
        "model/model.pkl",
        "model/conda.yaml",
        "model/data",
        "model/name with spaces & ü.txt",
    }
    assert repo.list_artifacts("metrics.json") == []

    for name in ("out", "one", "viauri"):
        (tmp_path / name).mkdir()
    downloaded_dir = Path(repo.download_artifacts("model", str(tmp_path / "out")))
    assert same_tree(tree, downloaded_dir)
    downloaded_file = Path(repo.download_artifacts("reports/daily/metrics.json", str(tmp_path / "one")))
    assert downloaded_file.read_bytes() == single.read_bytes()

    via_uri = Path(
        mlflow.artifacts.download_artifacts(artifact_uri=f"{uri}/model/data", dst_path=str(tmp_path / "viauri"))
    )
    assert same_tree(tree / "data", via_uri)

    repo.delete_artifacts("model/data")
    assert not (gateway.destination / root / "model" / "data").exists()
    assert {info.path for info in repo.list_artifacts("model")} == {
        "model/MLmodel",
        "model/model.pkl",
        "model/conda.yaml",
        "model/name with spaces & ü.txt",
    }
    repo.delete_artifacts()
    assert repo.list_artifacts() == []


def _requests_seen(gateway: RunningGateway) -> list[tuple[object, object, object]]:
    return [(line.get("method"), line.get("path"), line.get("status")) for line in gateway.log_lines()]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_large_file_above_the_threshold_goes_in_one_streamed_put_on_local_disk(
    gateway: RunningGateway, fresh_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the threshold the client asks server-info, which offers no multipart on local disk."""
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1024 * 1024))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * 1024 * 1024))
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(16 * 1024 * 1024 + 3))
    repo = get_artifact_repository(f"mlflow-artifacts://127.0.0.1:{gateway.port}/{fresh_dir}")
    repo.log_artifact(str(big))
    requests_seen = _requests_seen(gateway)
    assert ("GET", "/api/3.0/mlflow/server-info", 200) in requests_seen
    assert ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{fresh_dir}/big.bin", 200) in requests_seen
    assert not any("/mpu/" in str(item[1]) for item in requests_seen if fresh_dir in str(item[1]))
    (tmp_path / "out").mkdir()
    assert _sha256(Path(repo.download_artifacts("big.bin", str(tmp_path / "out")))) == _sha256(big)


def test_large_file_in_parallel_parts_round_trips_when_multipart_is_offered_on_local_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --local-multipart-uploads the client sends parts (uneven last one); completion copies none."""
    with run_gateway(tmp_path / "gw", "--local-multipart-uploads") as offered:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", offered.url)
        monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1024 * 1024))
        monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * 1024 * 1024))
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(16 * 1024 * 1024 + 3))
        repo = get_artifact_repository(f"mlflow-artifacts://127.0.0.1:{offered.port}/run/artifacts")
        repo.log_artifact(str(big), "model")
        requests_seen = _requests_seen(offered)
        assert ("GET", "/api/3.0/mlflow/server-info", 200) in requests_seen
        assert ("POST", "/api/2.0/mlflow-artifacts/mpu/create/run/artifacts/model", 200) in requests_seen
        assert sum(1 for item in requests_seen if item == ("PUT", "/api/2.0/mlflow-artifacts/mpu/part", 200)) == 4
        assert ("POST", "/api/2.0/mlflow-artifacts/mpu/complete/run/artifacts/model", 200) in requests_seen
        assert not any(item[0] == "PUT" and str(item[1]).endswith("big.bin") for item in requests_seen)
        assert [(i.path, i.file_size) for i in repo.list_artifacts("model")] == [("model/big.bin", big.stat().st_size)]
        (tmp_path / "out").mkdir()
        assert _sha256(Path(repo.download_artifacts("model/big.bin", str(tmp_path / "out")))) == _sha256(big)
        assert list((offered.destination / ".artifact-gateway-staging" / "mpu").iterdir()) == []


def test_client_falls_back_to_one_put_when_multipart_is_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with run_gateway(tmp_path / "gw", "--multipart-upload", "off") as off:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", off.url)
        monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1024 * 1024))
        monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")  # forced: the 501 text matters
        big = tmp_path / "forced.bin"
        big.write_bytes(os.urandom(3 * 1024 * 1024))
        get_artifact_repository(f"mlflow-artifacts://127.0.0.1:{off.port}/x").log_artifact(str(big))
        assert (off.destination / "x" / "forced.bin").read_bytes() == big.read_bytes()
        statuses = [
            (line.get("method"), line.get("status")) for line in off.log_lines() if "x" in str(line.get("path"))
        ]
        assert ("POST", 501) in statuses
        assert ("PUT", 200) in statuses


def test_missing_artifact_fails_fast_with_a_clear_error(
    gateway: RunningGateway, fresh_dir: str, tmp_path: Path
) -> None:
    repo = get_artifact_repository(f"mlflow-artifacts://127.0.0.1:{gateway.port}/{fresh_dir}")
    with pytest.raises(Exception, match=r"404|RESOURCE_DOES_NOT_EXIST|No such artifact"):
        repo._download_file("does/not/exist.bin", str(tmp_path / "x.bin"))
