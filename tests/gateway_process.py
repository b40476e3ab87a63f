"""Start the real `artifact-gateway serve` in a subprocess and talk to it over real HTTP."""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import resource
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.storage_servers import stop

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@dataclass
class RunningGateway:
    proc: subprocess.Popen[bytes]
    port: int
    destination: Path  # the local directory; a placeholder for cloud destinations
    log_path: Path
    destination_uri: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def artifact_url(self, path: str) -> str:
        return f"{self.url}{ARTIFACTS}/{path}"

    def log_lines(self) -> list[dict[str, object]]:
        lines = []
        for raw in self.log_path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                lines.append(json.loads(raw))
        return lines

    def wait_for_log(self, **fields: object) -> list[dict[str, object]]:
        """The log lines with these fields, once there is one: a request is logged after its response."""
        deadline = time.monotonic() + 10
        while True:
            found = [line for line in self.log_lines() if all(line.get(k) == v for k, v in fields.items())]
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line with {fields} in:\n{self.log_path.read_text()[-2000:]}")
            time.sleep(0.05)

    def raw_request(
        self, method: str, target: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Send `target` byte for byte (no client-side normalisation of `..` or escapes)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.putrequest(method, target, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


def _limit_open_files(count: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))


def _wait_for_port(proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for raw in log_path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                line = json.loads(raw)
                if line.get("msg") == "listening":
                    return int(line["port"])
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.05)
    raise TimeoutError(f"gateway did not start:\n{log_path.read_text()[-3000:]}")


def _wait_until_serving(proc: subprocess.Popen[bytes], port: int, *, tls: bool, timeout: float = 30.0) -> None:
    """Wait for /health: the port is bound before the worker has built its app and accepts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        connection = (
            http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ssl._create_unverified_context())
            if tls
            else http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        )
        try:
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.05)
    raise TimeoutError(f"gateway on port {port} did not answer /health")


def gateway_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", *args]


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """`artifact-gateway ARGS` to completion, in an environment without MLflow's or our variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ARTIFACT_GATEWAY_"))}
    return subprocess.run(
        gateway_command(*args),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
        cwd=cwd,
    )


@contextlib.contextmanager
def run_gateway(
    workdir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    destination: Path | str | None = None,
    open_files: int | None = None,
) -> Iterator[RunningGateway]:
    """Run `artifact-gateway serve --port 0 ...` with its cwd in `workdir` until the block ends.

    `open_files` sets the process's limit on open descriptors (soft and hard), as `ulimit -n` would.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    destination = destination or workdir / "mlartifacts"
    log_path = workdir / f"gateway-{time.monotonic_ns()}.log"
    command = gateway_command("serve", "--port", "0", "--artifacts-destination", str(destination), *args)
    process_env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ARTIFACT_GATEWAY_"))}
    process_env.update(env or {})
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=process_env,
            start_new_session=True,
            preexec_fn=None if open_files is None else functools.partial(_limit_open_files, open_files),
        )
    try:
        port = _wait_for_port(proc, log_path)
        _wait_until_serving(proc, port, tls="--tls-cert" in args)
        local = destination if isinstance(destination, Path) else Path("/nonexistent-cloud-destination")
        yield RunningGateway(proc, port, local, log_path, str(destination))
    finally:
        stop(proc)
