"""The storage server dies mid-upload: the client gets a clear error and nothing becomes visible."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from tests.conftest import s3_client
from tests.gateway_process import ARTIFACTS, RunningGateway, run_gateway
from tests.storage_servers import azurite_blob, seaweed_s3

MIB = 1 << 20


def upload_while_backend_dies(port: int, target: str, kill: object) -> tuple[int, dict[str, object]]:
    """Send half of a 40 MiB body, kill the backend, send the rest; return the gateway's answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(
            f"PUT {ARTIFACTS}/{target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {40 * MIB}\r\n\r\n".encode()
        )
        for _ in range(20):
            sock.sendall(os.urandom(MIB))
        time.sleep(0.5)
        kill()  # type: ignore[operator]
        try:
            for _ in range(20):
                sock.sendall(os.urandom(MIB))
        except OSError:
            pass  # the gateway may answer and close before the body is over
        response = b""
        while b"\r\n\r\n" not in response or len(response.split(b"\r\n\r\n", 1)[1]) < int(
            dict(line.split(": ", 1) for line in response.split(b"\r\n\r\n")[0].decode().split("\r\n")[1:]).get(
                "Content-Length", "0"
            )
            if b"\r\n\r\n" in response
            else 1
        ):
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_s3_dies_mid_upload(tmp_path: Path) -> None:
    with seaweed_s3(tmp_path / "weed", keep_data=True) as (server, proc):
        s3_client(server).create_bucket(Bucket="faults")
        ports = server.ports
        env = {**server.env(), "ARTIFACT_GATEWAY_S3_ADDRESSING_STYLE": "path"}
        with run_gateway(tmp_path / "gw", env=env, destination="s3://faults/root") as gateway:
            status, body = upload_while_backend_dies(
                gateway.port, "dying/model.bin", lambda: os.killpg(proc.pid, signal.SIGKILL)
            )
            assert status == 502, body
            assert body["error_code"] == "INTERNAL_ERROR"
            assert "S3" in str(body["message"])
            assert "Traceback" not in gateway.log_path.read_text()
            assert any(line.get("status") == 502 and "error" in line for line in gateway.log_lines())
    with seaweed_s3(tmp_path / "weed", ports=ports) as (server, _):
        listing = s3_client(server).list_objects_v2(Bucket="faults", Prefix="root/dying/")
        assert listing.get("KeyCount", 0) == 0, "a half-uploaded object must never become visible"


def test_azure_dies_mid_upload(tmp_path: Path) -> None:
    with azurite_blob(tmp_path / "azurite", keep_data=True) as (server, proc):
        BlobServiceClient.from_connection_string(server.connection_string).create_container("faults")
        port = int(server.blob_endpoint.rsplit(":", 1)[1].split("/")[0])
        env = {"AZURE_STORAGE_CONNECTION_STRING": server.connection_string}
        uri = f"wasbs://faults@{server.account}.blob.core.windows.net/root"
        with run_gateway(tmp_path / "gw", env=env, destination=uri) as gateway:
            status, body = upload_while_backend_dies(
                gateway.port, "dying/model.bin", lambda: os.killpg(proc.pid, signal.SIGKILL)
            )
            assert status == 502, body
            assert "Azure" in str(body["message"])
            assert "Traceback" not in gateway.log_path.read_text()
    with azurite_blob(tmp_path / "azurite", port=port) as (server, _):
        container = BlobServiceClient.from_connection_string(server.connection_string).get_container_client("faults")
        # Azurite may lose recent metadata (even the container) on SIGKILL; either way no blob appeared.
        assert not container.exists() or [blob.name for blob in container.list_blobs()] == []


@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_unreachable_backend_at_start_is_one_line(tmp_path: Path, kind: str) -> None:
    import subprocess

    from tests.gateway_process import gateway_command

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ARTIFACT_GATEWAY_", "AWS_", "AZURE_"))}
    if kind == "s3":
        env.update(
            {
                "AWS_ACCESS_KEY_ID": "x",
                "AWS_SECRET_ACCESS_KEY": "y",
                "AWS_DEFAULT_REGION": "us-east-1",
                "MLFLOW_S3_ENDPOINT_URL": "http://127.0.0.1:9",
                "AWS_MAX_ATTEMPTS": "1",
            }
        )
        destination = "s3://bucket/root"
    else:
        env["AZURE_STORAGE_CONNECTION_STRING"] = (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
            "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
        )
        destination = "wasbs://c@devstoreaccount1.blob.core.windows.net/root"
    result = subprocess.run(
        gateway_command("serve", "--port", "0", "--artifacts-destination", destination),
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("artifact-gateway: error: artifacts destination")


def download_while_backend_dies(gateway: RunningGateway, target: str, size: int, kill: object) -> int:
    """Read 1 MiB of a `size`-byte download, kill the backend, read on; return the bytes received."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=60) as sock:
        sock.sendall(f"GET {ARTIFACTS}/{target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        sock.settimeout(60)
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.split()[1] == b"200"
        assert f"Content-Length: {size}".encode() in head
        total = len(body)
        while total < MIB:
            total += len(sock.recv(65536))
        kill()  # type: ignore[operator]
        while chunk := sock.recv(1 << 20):
            total += len(chunk)
            if total >= size:
                break
        return total


@pytest.mark.parametrize("kind", ["s3", "azure"])
def test_backend_dies_mid_download(tmp_path: Path, kind: str) -> None:
    """The client sees the body cut short of Content-Length (never a silently short success), the
    gateway logs one line without a traceback, and keeps serving."""
    size = 64 * MIB
    data = os.urandom(size)
    backend = seaweed_s3(tmp_path / "weed") if kind == "s3" else azurite_blob(tmp_path / "azurite")
    with backend as (server, proc):
        if kind == "s3":
            s3_client(server).create_bucket(Bucket="faults")
            env = {**server.env(), "ARTIFACT_GATEWAY_S3_ADDRESSING_STYLE": "path"}
            uri = "s3://faults/root"
        else:
            BlobServiceClient.from_connection_string(server.connection_string).create_container("faults")
            env = {"AZURE_STORAGE_CONNECTION_STRING": server.connection_string}
            uri = f"wasbs://faults@{server.account}.blob.core.windows.net/root"
        with run_gateway(tmp_path / "gw", env=env, destination=uri) as gateway:
            put = requests.put(gateway.artifact_url("big/model.bin"), data=data, timeout=120)
            assert put.status_code == 200
            received = download_while_backend_dies(
                gateway, "big/model.bin", size, lambda: os.killpg(proc.pid, signal.SIGKILL)
            )
            assert received < size, "the body must be cut short, not padded or completed"
            time.sleep(1)
            assert "Traceback" not in gateway.log_path.read_text()
            lines = [line for line in gateway.log_lines() if line.get("method") == "GET"]
            assert lines and lines[-1]["outcome"] != "ok"
            assert requests.get(f"{gateway.url}/health", timeout=10).status_code == 200
