"""`artifact-gateway import-mlflow`: a store filled by the stock client (a stock `mlflow server` on
SQLite or PostgreSQL, an old ./mlruns file store) imported, then read back through the gateway with the stock
client: the same ids, values, histories, tags, relations; a crash and a second run end the same."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.compat.harness import run_mlflow_server
from tests.gateway_process import run_gateway
from tests.import_mlflow.helpers import clean_env, gateway_cli, populate, snapshot
from tests.postgres_server import create_database


def _filled_stock_server(
    workdir: Path, backend_store_uri: str | None = None
) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """A stock `mlflow server` on `backend_store_uri` (SQLite in `workdir` by default) filled by the stock
    client: its folder (artifacts in `art`), what was logged, what the stock client reads back from it."""
    with run_mlflow_server(workdir, backend_store_uri=backend_store_uri) as url:
        logged = populate(url, workdir)
        expected = snapshot(url, logged)
    return workdir, logged, expected


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """A stock `mlflow server` on SQLite (`mlflow.db`) filled by the stock client."""
    return _filled_stock_server(tmp_path_factory.mktemp("mlflow-server"))


@pytest.fixture(scope="module")
def mlflow_postgres_store(
    tmp_path_factory: pytest.TempPathFactory, postgres_dsn: str
) -> tuple[str, tuple[Path, dict[str, Any], dict[str, Any]]]:
    """A stock `mlflow server` on a new database of the session's PostgreSQL cluster filled by the stock
    client: the database's `postgresql://` URI, and what `_filled_stock_server` answers. MLflow is given
    `postgresql+psycopg2://`: SQLAlchemy 2.1 reaches a bare `postgresql://` with psycopg 3, not installed."""
    database = create_database(postgres_dsn, f"mlflow{uuid.uuid4().hex[:12]}")
    mlflow_uri = database.replace("postgresql://", "postgresql+psycopg2://", 1)
    return database, _filled_stock_server(tmp_path_factory.mktemp("mlflow-pg-server"), mlflow_uri)


@pytest.fixture(scope="module")
def file_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """An old ./mlruns file store written by the stock client (18-digit experiment ids)."""
    workdir = tmp_path_factory.mktemp("file-store")
    logged = populate("./mlruns", workdir, MLFLOW_ALLOW_FILE_STORE="true", POPULATE_ASSESSMENTS="0")
    return workdir, logged


@pytest.mark.parametrize("source_backend", ["sqlite", "postgresql"])
def test_a_stock_mlflow_server_store_reads_back_the_same_through_the_gateway(
    source_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if source_backend == "sqlite":
        workdir, logged, expected = request.getfixturevalue("mlflow_store")
        source = f"sqlite:///{workdir / 'mlflow.db'}"
    else:
        source, (workdir, logged, expected) = request.getfixturevalue("mlflow_postgres_store")
        assert source.startswith("postgresql://")
    store = f"sqlite:///{tmp_path / 'gateway.db'}"
    done = gateway_cli("import-mlflow", "--from", source, "--backend-store-uri", store)
    assert done.returncode == 0, done.stderr
    assert "DIFFERENT" not in done.stderr and "0 different" in done.stderr
    with run_gateway(tmp_path / "gw", "--backend-store-uri", store, destination=workdir / "art") as gateway:
        assert snapshot(gateway.url, logged) == expected
        import mlflow

        mlflow.set_tracking_uri(gateway.url)
        model = mlflow.pyfunc.load_model("models:/reg-model@champion")
        import pandas as pd

        assert model.predict(pd.DataFrame({"x": [4.0]}))[0] == pytest.approx(8.0)
        assert mlflow.artifacts.load_text(f"runs:/{logged['parent']}/notes/hello.txt") == "hello"


def _analyzed_tables(dsn: str) -> set[str]:
    """The tables of a PostgreSQL database that ANALYZE has run on (autovacuum's own analyze not counted)."""
    import asyncio

    import asyncpg

    async def read() -> set[str]:
        connection = await asyncpg.connect(dsn)
        try:
            rows = await connection.fetch("SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL")
        finally:
            await connection.close()
        return {row["relname"] for row in rows}

    return asyncio.run(read())


def test_an_old_file_store_imports_into_postgresql_with_its_18_digit_ids(
    file_store: tuple[Path, dict[str, Any]], tmp_path: Path, postgres_dsn: str
) -> None:
    workdir, logged = file_store
    assert all(len(experiment_id) == 18 for experiment_id in logged["experiments"])
    source_env = clean_env(MLFLOW_TRACKING_URI=str(workdir / "mlruns"), MLFLOW_ALLOW_FILE_STORE="true")
    expected = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys; from tests.import_mlflow.helpers import snapshot; "
            "print(json.dumps(snapshot(sys.argv[1], json.loads(sys.argv[2])), default=str))",
            str(workdir / "mlruns"),
            __import__("json").dumps(logged),
        ],
        env=source_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert expected.returncode == 0, expected.stderr[-3000:]
    store = create_database(postgres_dsn, f"i{uuid.uuid4().hex[:12]}")
    destination = tmp_path / "artifacts"
    dry = gateway_cli("import-mlflow", "--from", str(workdir / "mlruns"), "--backend-store-uri", store, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would import" in dry.stderr and "local paths" in dry.stderr
    done = gateway_cli(
        "import-mlflow",
        "--from",
        str(workdir / "mlruns"),
        "--backend-store-uri",
        store,
        "--copy-artifacts-to",
        str(destination),
    )
    assert done.returncode == 0, done.stderr
    assert "verified by SHA-256" in done.stderr
    # the planner's statistics are there at once, not when autovacuum's analyze comes
    assert _analyzed_tables(store) >= {"experiments", "runs", "metrics", "latest_metrics", "params", "tags"}
    with run_gateway(tmp_path / "gw", "--backend-store-uri", store, destination=destination) as gateway:
        import json

        got = json.loads(json.dumps(snapshot(gateway.url, logged), default=str))
        assert got == json.loads(expected.stdout)
        import mlflow

        mlflow.set_tracking_uri(gateway.url)
        assert mlflow.artifacts.load_text(f"runs:/{logged['parent']}/notes/hello.txt") == "hello"
        model = mlflow.pyfunc.load_model("models:/reg-model@champion")
        assert model.metadata.model_id == logged["model_id"]
        # a new experiment gets an id of its own, past the imported ones
        new_id = mlflow.create_experiment("made-after-import")
        assert new_id not in logged["experiments"]


def _bulky_copy(source: Path, target: Path, runs: int, points: int) -> None:
    """The stock server's database with `runs` more runs of `points` points each, written in MLflow's schema."""
    target.write_bytes(source.read_bytes())
    db = sqlite3.connect(target)
    experiment_id = db.execute("SELECT experiment_id FROM experiments WHERE name = 'imported'").fetchone()[0]
    for number in range(runs):
        run_id = uuid.uuid4().hex
        db.execute(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
            "start_time, "
            "end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) VALUES "
            "(?, ?, 'LOCAL', '', '', 'u', 'FINISHED', ?, ?, '', 'active', ?, ?)",
            (
                run_id,
                f"bulk-{number}",
                1000 + number,
                2000 + number,
                f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts",
                experiment_id,
            ),
        )
        db.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES ('m', ?, ?, ?, ?, 0)",
            [(step * 0.5, 10_000 + step, run_id, step) for step in range(points)],
        )
    db.commit()
    db.close()


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    db = sqlite3.connect(path)
    tables = [
        row[0]
        for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'alembic_version'")
    ]
    dump = {}
    for table in tables:
        columns = [
            row[1] for row in db.execute(f"PRAGMA table_info({table})") if not (table == "metrics" and row[1] == "id")
        ]
        names = ", ".join(f'"{c}"' for c in columns)
        dump[table] = sorted(db.execute(f"SELECT {names} FROM {table}").fetchall(), key=repr)
    db.close()
    return dump


def test_a_killed_import_run_again_ends_with_the_same_store(
    mlflow_store: tuple[Path, dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    workdir, _, _ = mlflow_store
    source = tmp_path / "bulky.db"
    _bulky_copy(workdir / "mlflow.db", source, runs=1000, points=300)
    once, twice = tmp_path / "once.db", tmp_path / "twice.db"
    assert (
        gateway_cli(
            "import-mlflow", "--from", f"sqlite:///{source}", "--backend-store-uri", f"sqlite:///{once}"
        ).returncode
        == 0
    )

    command = [
        sys.executable,
        "-m",
        "gateway",
        "import-mlflow",
        "--from",
        f"sqlite:///{source}",
        "--backend-store-uri",
        f"sqlite:///{twice}",
    ]
    proc = subprocess.Popen(command, env=clean_env(), stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # killed once points are being written, before the end
        if " runs " in line:  # the first batch of runs (of five) is committed
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    db = sqlite3.connect(twice)
    partial = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    db.close()
    assert 0 < partial < 1000  # the kill came mid-way
    done = gateway_cli(*command[3:])
    assert done.returncode == 0, done.stderr
    assert _dump(once) == _dump(twice)
    time.sleep(0)


def test_an_id_the_store_holds_for_something_else_is_refused_and_nothing_is_written(
    mlflow_store: tuple[Path, dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    workdir, logged, _ = mlflow_store
    store = tmp_path / "busy.db"
    assert gateway_cli("migrate", "--backend-store-uri", f"sqlite:///{store}").returncode == 0
    db = sqlite3.connect(store)
    db.execute(
        "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, "
        "last_update_time) "
        "VALUES (?, 'someone-else', 'mlflow-artifacts:/x', 'active', 0, 0)",
        (int(logged["experiments"][0]),),
    )
    db.commit()
    db.close()
    before = _dump(store)
    refused = gateway_cli(
        "import-mlflow", "--from", f"sqlite:///{workdir / 'mlflow.db'}", "--backend-store-uri", f"sqlite:///{store}"
    )
    assert refused.returncode == 3
    assert "someone-else" in refused.stderr and "--on-conflict skip" in refused.stderr
    assert _dump(store) == before
    skipped = gateway_cli(
        "import-mlflow",
        "--from",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--backend-store-uri",
        f"sqlite:///{store}",
        "--on-conflict",
        "skip",
    )
    assert skipped.returncode == 0, skipped.stderr
    db = sqlite3.connect(store)
    assert db.execute(
        "SELECT name FROM experiments WHERE experiment_id = ?", (int(logged["experiments"][0]),)
    ).fetchone() == ("someone-else",)
    assert db.execute("SELECT COUNT(*) FROM runs WHERE run_uuid = ?", (logged["parent"],)).fetchone() == (0,)
    assert db.execute(
        "SELECT COUNT(*) FROM experiments WHERE experiment_id = ?", (int(logged["experiments"][1]),)
    ).fetchone() == (1,)
    db.close()


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("mysql://user@host/db", "unsupported source scheme"),
        ("sqlite:///{tmp}/missing.db", "does not exist"),
        ("sqlite:///{tmp}/other.db", "not an MLflow tracking database"),
        ("{tmp}/no-such-dir", "does not exist"),
        ("{tmp}", "not an MLflow file store"),
    ],
)
def test_a_bad_source_gets_a_clear_error_and_nothing_is_written(source: str, fragment: str, tmp_path: Path) -> None:
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE things (x INTEGER)")
    other.commit()
    other.close()
    store = tmp_path / "target" / "store.db"
    done = gateway_cli(
        "import-mlflow", "--from", source.format(tmp=tmp_path), "--backend-store-uri", f"sqlite:///{store}"
    )
    assert done.returncode == 2
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr
    assert not store.parent.exists()


def test_a_dry_run_reports_counts_and_writes_nothing(
    mlflow_store: tuple[Path, dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    workdir, _, _ = mlflow_store
    store = tmp_path / "never.db"
    dry = gateway_cli(
        "import-mlflow",
        "--from",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--backend-store-uri",
        f"sqlite:///{store}",
        "--dry-run",
    )
    assert dry.returncode == 0, dry.stderr
    counts = {line.split()[0]: line.split()[-1] for line in dry.stderr.splitlines() if line.startswith("  ")}
    assert counts["runs"] == "3" and counts["traces"] == "1" and counts["assessments"] == "2"
    assert not store.exists()
