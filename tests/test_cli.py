"""`artifact-gateway serve`: flags, environment, config file, modes, workers, clean failures."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from gateway.settings import Settings
from gateway.store.startup import without_password
from tests.gateway_process import gateway_command, run_cli, run_gateway


def test_help_explains_every_flag_with_its_environment_variables() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    for flag in (
        "--host",
        "--port",
        "--workers",
        "--artifacts-destination",
        "--artifacts-only",
        "--serve-artifacts",
        "--no-serve-artifacts",
        "--backend-store-uri",
        "--default-artifact-root",
        "--fsync",
        "--config",
        "MLFLOW_ARTIFACTS_DESTINATION",
        "ARTIFACT_GATEWAY_PORT",
        "MLFLOW_PORT",
    ):
        assert flag in result.stdout
    table = [line for line in (Path(__file__).parent.parent / "docs" / "configuration.md").read_text().splitlines()]
    documented = "\n".join(line.split(" | ")[0] for line in table if line.startswith("| `--"))  # the flag column
    for name, field in Settings.model_fields.items():  # every setting: in --help, and in the docs' table
        flag = "--" + name.replace("_", "-")
        assert flag in result.stdout, flag
        assert f"`{flag}`" in documented, f"{flag} is not in configuration.md's table"
        assert field.description and len(field.description) > 20, f"{flag} needs a clear --help text"
    top = run_cli("--help")
    assert "serve" in top.stdout
    assert run_cli("--version").stdout.startswith("artifact-gateway ")


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["--port", "70000"], {}, "invalid port"),
        ([], {"ARTIFACT_GATEWAY_PORT": "not-a-port"}, "invalid port"),
        (["--port", "0"], {"MLFLOW_WORKERS": "0"}, "invalid workers"),
        (["--port", "0", "--artifacts-only", "--no-serve-artifacts"], {}, "--artifacts-only needs artifact serving"),
        (["--port", "0", "--config", "/no/such/file.toml"], {}, "does not exist"),
        (["--port", "0", "--artifacts-destination", "gs://bucket/prefix"], {}, "scheme 'gs://' is not supported"),
        (
            ["--port", "0", "--artifacts-destination", "s3://bucket/prefix"],
            {"AWS_CONFIG_FILE": "/nonexistent"},
            "no AWS credentials",
        ),
        (
            ["--port", "0", "--artifacts-destination", "wasbs://c@acct.blob.core.windows.net/p"],
            {},
            "no Azure credentials",
        ),
        (["--port", "0", "--artifacts-destination", "wasbs://no-account-here/p"], {}, "is not wasbs://"),
        (["--port", "0", "--artifacts-destination", "/proc/forbidden/dest"], {}, "artifacts destination"),
        (["--port", "0", "--host", "no-such-host.invalid"], {}, "cannot resolve --host"),
        (["--port", "0", "--trusted-proxies", "10.0.0.0/8, proxy.example"], {}, "invalid --trusted-proxies"),
    ],
)
def test_bad_settings_fail_at_start_with_one_clear_line(
    tmp_path: Path, args: list[str], env: dict[str, str], fragment: str
) -> None:
    result = run_cli("serve", *args, env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("artifact-gateway: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_config_file_contents_fail_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("wrokers = 2\n")
    (tmp_path / "broken.toml").write_text("port = \n")
    for name, fragment in (("bad.toml", "unknown setting 'wrokers'"), ("broken.toml", "broken.toml")):
        result = run_cli("serve", "--config", str(tmp_path / name), cwd=tmp_path)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1
        assert fragment in result.stderr


def test_port_in_use_fails_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 2
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_default_destination_is_mlartifacts_in_the_working_directory(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ARTIFACT_GATEWAY_"))}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            gateway_command("serve", "--port", "0"),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while '"listening"' not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "mlartifacts").is_dir()
        assert f'"artifacts_destination": "{tmp_path / "mlartifacts"}"' in log.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(20) == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_right_after_listening_is_a_graceful_stop(tmp_path: Path, workers: str) -> None:
    """A SIGTERM that lands before the event loop has its handler waits for it instead of killing the process."""
    log = tmp_path / "out.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ARTIFACT_GATEWAY_"))}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            gateway_command("serve", "--port", "0", "--artifacts-only", "--workers", workers),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean,
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while '"listening"' not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.001)
    os.kill(proc.pid, signal.SIGTERM)  # at once: the worker's loop may not be running yet
    try:
        assert proc.wait(30) == 0, log.read_text()[-2000:]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_mlflow_environment_names_are_accepted(tmp_path: Path) -> None:
    destination = tmp_path / "from-mlflow-env"
    with run_gateway(
        tmp_path, env={"MLFLOW_ARTIFACTS_DESTINATION": str(destination)}, destination=destination
    ) as gateway:
        pass
    assert destination.is_dir()
    # An explicit flag beats the environment, which beats the config file.
    (tmp_path / "gw.toml").write_text('artifacts_destination = "from-file"\nfsync = false\n')
    env = {"ARTIFACT_GATEWAY_CONFIG": str(tmp_path / "gw.toml")}
    with run_gateway(tmp_path / "cfg", env=env, destination=tmp_path / "from-flag") as gateway:
        assert requests.put(gateway.artifact_url("x.txt"), data=b"x", timeout=30).status_code == 200
    assert (tmp_path / "from-flag" / "x.txt").exists()
    assert not (tmp_path / "cfg" / "from-file").exists()


def test_config_file_sets_the_destination(tmp_path: Path) -> None:
    (tmp_path / "gw.toml").write_text(f'artifacts_destination = "{tmp_path / "configured"}"\n')
    log = tmp_path / "out.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ARTIFACT_GATEWAY_"))}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            gateway_command("serve", "--port", "0", "--config", str(tmp_path / "gw.toml")),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while '"listening"' not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "configured").is_dir()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def test_artifacts_only_mode_disables_tracking_with_a_fast_failing_error(tmp_path: Path) -> None:
    with run_gateway(tmp_path, "--artifacts-only") as gateway:
        response = requests.post(f"{gateway.url}/api/2.0/mlflow/experiments/create", json={"name": "x"}, timeout=30)
        assert response.status_code == 501
        assert response.json()["error_code"] == "NOT_IMPLEMENTED"
        assert "--artifacts-only" in response.json()["message"]
        assert requests.put(gateway.artifact_url("a.txt"), data=b"a", timeout=30).status_code == 200
        info = requests.get(f"{gateway.url}/api/3.0/mlflow/server-info", timeout=30).json()
        assert info["artifact_gateway"]["mode"] == "artifacts-only"
        assert requests.get(f"{gateway.url}/health", timeout=30).text == "OK"


def test_no_serve_artifacts_mode_answers_501_on_artifact_routes(tmp_path: Path) -> None:
    with run_gateway(tmp_path, "--no-serve-artifacts", "--default-artifact-root", "s3://bucket/root") as gateway:
        for method in ("GET", "PUT", "DELETE"):
            response = requests.request(method, gateway.artifact_url("a.txt"), timeout=30)
            assert response.status_code == 501
            assert "--no-serve-artifacts" in response.json()["message"]
        assert not gateway.destination.exists()


def test_several_workers_share_the_port_and_stop_on_sigterm(tmp_path: Path) -> None:
    import psutil

    def live_workers(pid: int) -> set[int]:
        return {child.pid for child in psutil.Process(pid).children() if child.status() != psutil.STATUS_ZOMBIE}

    def wait_for_workers(pid: int, not_in: set[int] = frozenset()) -> set[int]:  # type: ignore[assignment]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            workers = live_workers(pid)
            if len(workers) == 2 and not workers & not_in:
                return workers
            time.sleep(0.05)
        raise AssertionError(f"expected 2 fresh workers, have {live_workers(pid)}")

    with run_gateway(tmp_path, "--workers", "2") as gateway:
        workers = wait_for_workers(gateway.proc.pid)
        for index in range(20):
            assert requests.put(gateway.artifact_url(f"w/{index}.txt"), data=b"w", timeout=30).status_code == 200
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)  # a crashed worker is replaced
        wait_for_workers(gateway.proc.pid, not_in={victim})
        assert requests.get(gateway.artifact_url("w/3.txt"), timeout=30).content == b"w"
        gateway.proc.send_signal(signal.SIGTERM)
        assert gateway.proc.wait(30) == 0
    assert len(list((tmp_path / "mlartifacts" / "w").iterdir())) == 20


def test_sigterm_lets_an_in_flight_upload_finish(tmp_path: Path) -> None:
    with run_gateway(tmp_path) as gateway:
        with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
            body = os.urandom(2_000_000)
            sock.sendall(
                f"PUT /api/2.0/mlflow-artifacts/artifacts/slow.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:1_000_000]
            )
            time.sleep(0.3)
            gateway.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            sock.sendall(body[1_000_000:])
            assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        assert gateway.proc.wait(30) == 0
        assert (gateway.destination / "slow.bin").read_bytes() == body


def _tables(database: Path) -> set[str]:
    import sqlite3

    with contextlib.closing(sqlite3.connect(database)) as connection:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_migrate_creates_the_schema_once_and_exits(tmp_path: Path) -> None:
    result = run_cli("migrate", "--backend-store-uri", f"sqlite:///{tmp_path / 'flag.db'}")
    assert result.returncode == 0, result.stderr
    assert "has the newest schema" in result.stdout
    assert {"alembic_version", "experiments", "runs", "metrics", "users", "api_tokens"} <= _tables(tmp_path / "flag.db")
    again = run_cli("migrate", "--backend-store-uri", f"sqlite:///{tmp_path / 'flag.db'}")
    assert again.returncode == 0, again.stderr  # nothing left to do is fine
    for name in ("ARTIFACT_GATEWAY_BACKEND_STORE_URI", "MLFLOW_BACKEND_STORE_URI"):
        assert run_cli("migrate", env={name: f"sqlite:///{tmp_path / name}.db"}).returncode == 0
        assert "alembic_version" in _tables(tmp_path / f"{name}.db")
    assert run_cli("migrate", cwd=tmp_path).returncode == 0  # the default, like serve's: ./mlruns.db
    assert "runs" in _tables(tmp_path / "mlruns.db")
    # A store that `migrate` prepared is served as it is.
    with run_gateway(tmp_path / "serve", "--backend-store-uri", f"sqlite:///{tmp_path / 'flag.db'}") as gateway:
        response = requests.post(f"{gateway.url}/api/2.0/mlflow/experiments/create", json={"name": "m"}, timeout=30)
        assert response.status_code == 200


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("mysql://user:pw@db/x", "unsupported backend store 'mysql'"),
        ("sqlite://", "in-memory SQLite"),
        ("postgresql://user:s3cret@127.0.0.1:9/x", "backend store 'postgresql://user:***@127.0.0.1:9/x' is unusable"),
    ],
)
def test_migrate_failures_are_one_line_without_the_password(uri: str, fragment: str) -> None:
    result = run_cli("migrate", "--backend-store-uri", uri)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert fragment in result.stderr
    assert "s3cret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_concurrent_migrations_of_one_postgresql_store_take_turns(postgres_dsn: str) -> None:
    import asyncio

    import asyncpg

    from tests.postgres_server import create_database

    store = create_database(postgres_dsn, f"m{uuid.uuid4().hex[:12]}")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ARTIFACT_GATEWAY_"))}
    runs = [
        subprocess.Popen(
            gateway_command("migrate", "--backend-store-uri", store),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean,
        )
        for _ in range(3)
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=60)
        assert run.returncode == 0, stderr

    async def versions() -> list[str]:
        connection = await asyncpg.connect(store)
        try:
            return [row[0] for row in await connection.fetch("SELECT version_num FROM alembic_version")]
        finally:
            await connection.close()

    assert len(asyncio.run(versions())) == 1


def test_dev_serve_resolves_relative_paths_from_where_it_is_run(tmp_path: Path) -> None:
    """`./dev serve` changes into the checkout to find its venv, then back: a relative
    `--artifacts-destination ./art` or `sqlite:///rel.db` lands where the user ran it, not in the checkout."""
    checkout = Path(__file__).resolve().parent.parent
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    stamp = hashlib.sha256(
        (checkout / "requirements/runtime.txt").read_bytes() + (checkout / "pyproject.toml").read_bytes()
    )
    (venv / f".installed-{stamp.hexdigest()[:16]}").touch()  # installed already: ./dev installs nothing
    (venv / "bin/python").symlink_to(sys.executable)
    gateway = venv / "bin/artifact-gateway"
    gateway.write_text('#!/bin/sh\necho "cwd=$PWD args=$*"\n')  # stands in for the server: says where it runs
    gateway.chmod(0o755)
    user_dir = tmp_path / "user"
    user_dir.mkdir()
    result = subprocess.run(
        [str(checkout / "dev"), "serve", "--artifacts-destination", "./art"],
        cwd=user_dir,
        env={**os.environ, "VENV": str(venv)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"cwd={user_dir} args=serve --artifacts-destination ./art"


def test_the_start_line_names_the_database_without_its_password(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ARTIFACT_GATEWAY_"))}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            gateway_command("serve", "--port", "0", "--backend-store-uri", "sqlite:///rel.db"),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while '"listening"' not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert '"backend_store": "sqlite:///rel.db"' in log.read_text()
        assert (tmp_path / "rel.db").is_file()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(20) == 0
    assert without_password("postgresql://u:s3cret@db:5432/x") == "postgresql://u:***@db:5432/x"


def test_a_store_in_a_missing_directory_stops_the_start_with_one_line(tmp_path: Path) -> None:
    result = run_cli("serve", "--port", "0", "--backend-store-uri", f"sqlite:///{tmp_path}/missing/x.db")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"the directory {tmp_path}/missing of the SQLite database does not exist" in lines[0]
    assert not (tmp_path / "missing").exists()


def test_an_mlflow_file_store_uri_says_it_is_not_served_directly(tmp_path: Path) -> None:
    result = run_cli("serve", "--port", "0", "--backend-store-uri", "./mlruns")
    assert result.returncode != 0
    assert "an MLflow file store such as ./mlruns is not served directly" in result.stderr
