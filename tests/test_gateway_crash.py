"""The gateway is SIGKILLed mid-upload, then restarted: the object never appears, and no debris stays
(on local disk the staging file is anonymous, so it dies with the process; a named one left by a
crash is swept; an open multipart upload on S3 is swept)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import requests

from tests.conftest import s3_client
from tests.gateway_process import ARTIFACTS, RunningGateway, run_gateway
from tests.storage_servers import AzureServer, S3Server

MIB = 1 << 20


def start_upload(gateway: RunningGateway, target: str, sent_mib: int) -> socket.socket:
    """A PUT of a declared 64 MiB of which `sent_mib` MiB have gone out; the socket stays open."""
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=60)
    sock.sendall(f"PUT {ARTIFACTS}/{target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {64 * MIB}\r\n\r\n".encode())
    for _ in range(sent_mib):
        sock.sendall(os.urandom(MIB))
    return sock


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def kill(gateway: RunningGateway) -> None:
    os.killpg(gateway.proc.pid, signal.SIGKILL)
    gateway.proc.wait(10)


def swept(gateway: RunningGateway) -> bool:
    return any(line.get("msg") == "swept abandoned uploads" for line in gateway.log_lines())


def open_staging_files(gateway: RunningGateway) -> list[str]:
    """The staging files the gateway's processes hold open (anonymous ones read '<dir>/#<inode> (deleted)').

    The descriptors are read from /proc by hand: psutil's open_files() leaves out paths that no longer
    exist, which an anonymous staging file's is.
    """
    root = psutil.Process(gateway.proc.pid)
    found = []
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(OSError):  # a process that ended meanwhile
            for fd in os.listdir(f"/proc/{process.pid}/fd"):
                target = os.readlink(f"/proc/{process.pid}/fd/{fd}")
                if ".artifact-gateway-staging" in target:
                    found.append(target)
    return found


def test_local_upload_killed_leaves_nothing_and_debris_is_swept(tmp_path: Path) -> None:
    destination = tmp_path / "artifacts"
    staging = destination / ".artifact-gateway-staging"
    with run_gateway(tmp_path / "first", destination=destination) as gateway:
        sock = start_upload(gateway, "crash/model.bin", 20)
        wait_for(lambda: bool(open_staging_files(gateway)), "the upload's staging file")
        kill(gateway)
        sock.close()
    assert not (destination / "crash").exists()
    assert not list(staging.iterdir()), "the killed upload's anonymous staging file outlived the process"
    # A named staging file (what a crash mid-commit, or a file system without O_TMPFILE, leaves) is swept.
    debris = staging / "0123456789abcdef0123456789abcdef.part"
    debris.write_bytes(b"x" * MIB)
    old = time.time() - 60
    os.utime(debris, (old, old))
    with run_gateway(tmp_path / "second", "--staging-ttl-seconds", "1", destination=destination) as restarted:
        wait_for(lambda: swept(restarted), "the sweep at start")
        assert not list(staging.glob("*.part"))
        assert requests.get(restarted.artifact_url("crash/model.bin"), timeout=10).status_code == 404
        # The restarted gateway works normally on the same destination.
        assert requests.put(restarted.artifact_url("crash/model.bin"), data=b"whole", timeout=10).status_code == 200
    assert (destination / "crash" / "model.bin").read_bytes() == b"whole"


def test_s3_upload_killed_then_swept(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_client(s3_server)
    env = {**s3_server.env(), "ARTIFACT_GATEWAY_S3_ADDRESSING_STYLE": "path"}
    destination = f"s3://{s3_bucket}/root"

    def open_uploads() -> list[str]:
        return [upload["Key"] for upload in client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])]

    with run_gateway(tmp_path / "first", env=env, destination=destination) as gateway:
        sock = start_upload(gateway, "crash/model.bin", 30)  # past several 8 MiB parts
        wait_for(lambda: open_uploads() == ["root/crash/model.bin"], "an open multipart upload")
        kill(gateway)
        sock.close()
    assert client.list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0
    time.sleep(1.2)
    with run_gateway(tmp_path / "second", "--staging-ttl-seconds", "1", env=env, destination=destination) as restarted:
        wait_for(lambda: swept(restarted), "the sweep at start")
        assert open_uploads() == []
        assert requests.get(restarted.artifact_url("crash/model.bin"), timeout=10).status_code == 404
    assert client.list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0


def test_azure_upload_killed_leaves_nothing_visible(
    tmp_path: Path, azure_server: AzureServer, azure_container: str
) -> None:
    """Staged blocks stay uncommitted (Azure drops them on its own): no blob, before or after a restart."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob import BlobServiceClient

    container = BlobServiceClient.from_connection_string(azure_server.connection_string).get_container_client(
        azure_container
    )
    env = {"AZURE_STORAGE_CONNECTION_STRING": azure_server.connection_string}
    destination = f"wasbs://{azure_container}@{azure_server.account}.blob.core.windows.net/root"
    blob = container.get_blob_client("root/crash/model.bin")

    def staged_blocks() -> int:
        try:
            _, uncommitted = blob.get_block_list("uncommitted")
        except ResourceNotFoundError:  # the blob does not exist at all until a block is staged
            return 0
        return len(uncommitted)

    with run_gateway(tmp_path / "first", env=env, destination=destination) as gateway:
        sock = start_upload(gateway, "crash/model.bin", 30)
        wait_for(lambda: staged_blocks() > 0, "staged blocks")
        kill(gateway)
        sock.close()
    assert [item.name for item in container.list_blobs()] == []
    with run_gateway(tmp_path / "second", env=env, destination=destination) as restarted:
        assert requests.get(restarted.artifact_url("crash/model.bin"), timeout=10).status_code == 404
    assert [item.name for item in container.list_blobs()] == []
