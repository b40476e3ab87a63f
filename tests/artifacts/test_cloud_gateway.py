"""The gateway in front of real S3 (SeaweedFS) and Azure Blob (Azurite), driven by the stock client."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from tests.cloud_backend import Backend
from tests.gateway_process import ARTIFACTS, RunningGateway, run_gateway

MIB = 1 << 20


@pytest.fixture(scope="module", params=["s3", "azure"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return Backend(request.param, request)


@pytest.fixture(scope="module")
def cloud(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with run_gateway(
        tmp_path_factory.mktemp(f"cloud-{backend.kind}"),
        "--presigned-downloads",
        env=backend.env,
        destination=backend.uri,
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def client_env(cloud: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", cloud.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AZURE_STORAGE_CONNECTION_STRING"):
        monkeypatch.delenv(name, raising=False)  # the client holds no storage credentials


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(8 * MIB):
            digest.update(block)
    return digest.hexdigest()


def test_stock_client_logs_600_mib_with_multipart_lists_and_downloads(
    cloud: RunningGateway, backend: Backend, tmp_path: Path, fresh_dir: str
) -> None:
    big = tmp_path / "model.bin"
    with open(big, "wb") as out:
        for _ in range(60):
            out.write(os.urandom(10 * MIB))
    repo = get_artifact_repository(f"mlflow-artifacts://127.0.0.1:{cloud.port}/{fresh_dir}/run/artifacts")
    repo.log_artifact(str(big), "model")
    lines = cloud.log_lines()
    assert any(
        line.get("path") == f"/api/2.0/mlflow-artifacts/mpu/complete/{fresh_dir}/run/artifacts/model"
        and line.get("status") == 200
        for line in lines
    ), "the client used the multipart API on its own"
    assert [(i.path, i.file_size) for i in repo.list_artifacts("model")] == [("model/model.bin", 600 * MIB)]
    (tmp_path / "out").mkdir()
    downloaded = Path(repo.download_artifacts("model/model.bin", str(tmp_path / "out")))
    assert sha256_file(downloaded) == sha256_file(big)
    assert backend.open_uploads() == []


def test_stock_client_log_artifact_above_the_threshold_uses_multipart_and_round_trips(
    cloud: RunningGateway, backend: Backend, tmp_path: Path, fresh_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 600 MiB test above, small: the client's threshold and part size lowered, a short last part."""
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(MIB))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MIB))
    big = tmp_path / "model.bin"
    big.write_bytes(os.urandom(17 * MIB + 3))
    repo = get_artifact_repository(f"mlflow-artifacts://127.0.0.1:{cloud.port}/{fresh_dir}/run/artifacts")
    repo.log_artifact(str(big), "model")
    paths = [(line.get("method"), str(line.get("path")), line.get("status")) for line in cloud.log_lines()]
    statuses = [(method, path.rsplit("/mpu/", 1)[-1], status) for method, path, status in paths if "/mpu/" in path]
    assert ("POST", f"create/{fresh_dir}/run/artifacts/model", 200) in statuses
    assert ("POST", f"complete/{fresh_dir}/run/artifacts/model", 200) in statuses
    (tmp_path / "out").mkdir()
    downloaded = Path(repo.download_artifacts("model/model.bin", str(tmp_path / "out")))
    assert sha256_file(downloaded) == sha256_file(big)
    assert backend.open_uploads() == []


def test_range_missing_and_directory(cloud: RunningGateway, fresh_dir: str) -> None:
    data = os.urandom(3 * MIB)
    assert requests.put(cloud.artifact_url(f"{fresh_dir}/r.bin"), data=data, timeout=60).status_code == 200
    response = requests.get(
        cloud.artifact_url(f"{fresh_dir}/r.bin"), headers={"Range": "bytes=1000-2000999"}, timeout=60
    )
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 1000-2000999/{len(data)}"
    assert response.content == data[1000:2001000]
    assert (
        requests.get(
            cloud.artifact_url(f"{fresh_dir}/r.bin"), headers={"Range": f"bytes={len(data)}-"}, timeout=60
        ).status_code
        == 416
    )
    missing = requests.get(cloud.artifact_url(f"{fresh_dir}/missing.bin"), timeout=60)
    assert (missing.status_code, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    directory = requests.get(cloud.artifact_url(fresh_dir), timeout=60)
    assert directory.status_code == 400
    head = requests.head(cloud.artifact_url(f"{fresh_dir}/r.bin"), timeout=60)
    assert head.headers["Content-Length"] == str(len(data))
    assert head.headers["Repr-Digest"]


def test_streamed_large_put_is_whole_and_checksummed(cloud: RunningGateway, backend: Backend, fresh_dir: str) -> None:
    data = os.urandom(20 * MIB + 5)  # several parts / blocks through the gateway's own streaming
    chunks = [data[i : i + MIB] for i in range(0, len(data), MIB)]
    response = requests.put(cloud.artifact_url(f"{fresh_dir}/s.bin"), data=iter(chunks), timeout=120)
    assert response.status_code == 200
    sha256 = hashlib.sha256(data).hexdigest()
    # An S3 multipart object cannot carry its digest, so the SHA-256 is computed only on request.
    assert response.json()["sha256"] == (None if backend.kind == "s3" else sha256)
    assert backend.read(f"{fresh_dir}/s.bin") == data
    asked = requests.put(
        cloud.artifact_url(f"{fresh_dir}/asked.bin"),
        data=iter(chunks),
        headers={"Want-Repr-Digest": "sha-256=10"},
        timeout=120,
    )
    assert asked.status_code == 200
    assert asked.json()["sha256"] == sha256
    assert asked.headers["Repr-Digest"] == "sha-256=:" + base64.b64encode(bytes.fromhex(sha256)).decode() + ":"


def test_client_disconnect_mid_upload_leaves_no_object_and_no_open_upload(
    cloud: RunningGateway, backend: Backend, fresh_dir: str
) -> None:
    with socket.create_connection(("127.0.0.1", cloud.port)) as sock:
        sock.sendall(
            f"PUT {ARTIFACTS}/{fresh_dir}/cut.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: {64 * MIB}\r\n\r\n".encode()
        )
        for _ in range(20):  # 20 MiB: past two parts, so a multipart upload / staged blocks exist
            sock.sendall(os.urandom(MIB))
        time.sleep(0.5)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
        line.get("outcome") == "client_disconnected" and f"{fresh_dir}/cut.bin" in str(line.get("path"))
        for line in cloud.log_lines()
    ):
        time.sleep(0.1)
    time.sleep(0.5)
    assert not [key for key in backend.stored_keys() if fresh_dir in key]
    assert not [key for key in backend.open_uploads() if fresh_dir in key]
    assert "Traceback" not in cloud.log_path.read_text()


def test_presigned_download_gives_a_storage_url_that_honours_range(cloud: RunningGateway, fresh_dir: str) -> None:
    data = os.urandom(MIB)
    requests.put(cloud.artifact_url(f"{fresh_dir}/p.bin"), data=data, timeout=60).raise_for_status()
    info = requests.get(f"{cloud.url}/api/3.0/mlflow/server-info", timeout=30).json()
    assert info["multipart_downloads_enabled"] is True
    presigned = requests.get(f"{cloud.url}/api/2.0/mlflow-artifacts/presigned/{fresh_dir}/p.bin", timeout=30).json()
    assert presigned["file_size"] == len(data)
    assert not presigned["url"].startswith(cloud.url)
    ranged = requests.get(presigned["url"], headers={**presigned["headers"], "Range": "bytes=10-19"}, timeout=30)
    assert (ranged.status_code, ranged.content) == (206, data[10:20])
    missing = requests.get(f"{cloud.url}/api/2.0/mlflow-artifacts/presigned/{fresh_dir}/none.bin", timeout=30)
    assert missing.status_code == 404


def test_stock_client_multipart_download_through_presigned_urls(
    cloud: RunningGateway, tmp_path: Path, fresh_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(11 * MIB)
    requests.put(cloud.artifact_url(f"{fresh_dir}/d.bin"), data=data, timeout=60).raise_for_status()
    monkeypatch.setenv("MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE", str(4 * MIB))
    repo = get_artifact_repository(f"mlflow-artifacts://127.0.0.1:{cloud.port}/{fresh_dir}")
    (tmp_path / "out").mkdir()
    downloaded = Path(repo.download_artifacts("d.bin", str(tmp_path / "out")))
    assert downloaded.read_bytes() == data
    seen = [(line.get("method"), line.get("path")) for line in cloud.log_lines()]
    assert ("GET", f"/api/2.0/mlflow-artifacts/presigned/{fresh_dir}/d.bin") in seen
    assert ("GET", f"{ARTIFACTS}/{fresh_dir}/d.bin") not in seen  # the bytes bypassed the gateway


def test_direct_mode_sends_parts_straight_to_storage(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_gateway(
        tmp_path / "gw", "--multipart-upload", "direct", env=backend.env, destination=backend.uri
    ) as direct:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", direct.url)
        monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(MIB))
        monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MIB))
        big = tmp_path / "direct.bin"
        big.write_bytes(os.urandom(12 * MIB))
        get_artifact_repository(f"mlflow-artifacts://127.0.0.1:{direct.port}/direct").log_artifact(str(big))
        assert backend.read("direct/direct.bin") == big.read_bytes()
        paths = [str(line.get("path")) for line in direct.log_lines()]
        assert not any("/mpu/part" in path for path in paths)  # parts never touched the gateway
        assert "/api/2.0/mlflow-artifacts/mpu/complete/direct" in paths


def test_redirect_mode_answers_307_to_the_storage(backend: Backend, tmp_path: Path) -> None:
    with run_gateway(tmp_path / "gw", "--artifacts-redirect", env=backend.env, destination=backend.uri) as gw:
        requests.put(gw.artifact_url("redir/x.txt"), data=b"redirected", timeout=30).raise_for_status()
        response = requests.get(gw.artifact_url("redir/x.txt"), allow_redirects=False, timeout=30)
        assert response.status_code == 307
        assert not response.headers["Location"].startswith(gw.url)
        assert requests.get(gw.artifact_url("redir/x.txt"), timeout=30).content == b"redirected"
        assert requests.get(gw.artifact_url("redir/none.txt"), allow_redirects=False, timeout=30).status_code == 404
