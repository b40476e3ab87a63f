"""`artifact-gateway gc`: runs and experiments in the deleted state go for good, rows and artifact
folders (local disk, S3, Azure), while a gateway serves the same store; nothing else is touched."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from gateway.tracking.store.metrics import _POINT_ARRAYS, _POSTGRES_POINTS
from tests.cloud_backend import Backend
from tests.gateway_process import run_gateway
from tests.import_mlflow.helpers import ROOT
from tests.postgres_server import create_database


def gc(
    store: Path | str, destination: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `artifact-gateway gc` on `store` (a SQLite file or a database URI)."""
    process_env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ARTIFACT_GATEWAY_"))}
    process_env.update({"PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "gc",
            "--backend-store-uri",
            store if isinstance(store, str) else f"sqlite:///{store}",
            "--artifacts-destination",
            destination,
            *args,
        ],
        env=process_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rows_of(store: Path | str, run_id: str) -> dict[str, int]:
    """The run's rows in each of its tables, in a SQLite file or a PostgreSQL database."""
    uri = store.replace("postgresql://", "postgresql+psycopg2://") if isinstance(store, str) else f"sqlite:///{store}"
    engine = sqlalchemy.create_engine(uri)
    with engine.connect() as db:
        counts = {
            table: db.execute(
                sqlalchemy.text(f"SELECT COUNT(*) FROM {table} WHERE run_uuid = :run"), {"run": run_id}
            ).scalar_one()
            for table in ("runs", "params", "tags", "metrics", "latest_metrics")
        }
    engine.dispose()
    return counts


def fill(client: MlflowClient, tmp_path: Path) -> dict[str, Any]:
    """Two experiments; in one a run kept and a run deleted, the other deleted with its run."""
    (tmp_path / "file.txt").write_text("content")
    kept_experiment = client.create_experiment("kept")
    doomed_experiment = client.create_experiment("doomed")
    runs = {}
    for name, experiment in (
        ("kept", kept_experiment),
        ("deleted", kept_experiment),
        ("in-deleted-experiment", doomed_experiment),
    ):
        run = client.create_run(experiment, run_name=name)
        client.log_param(run.info.run_id, "p", "v")
        client.log_metric(run.info.run_id, "m", 1.0, step=1)
        client.log_artifact(run.info.run_id, str(tmp_path / "file.txt"), "dir")
        client.set_terminated(run.info.run_id)
        runs[name] = run.info
    client.delete_run(runs["deleted"].run_id)
    client.delete_experiment(doomed_experiment)
    return {"experiments": (kept_experiment, doomed_experiment), "runs": runs}


def artifact_prefix(info: Any) -> str:
    """A run's artifact folder below the destination root (from mlflow-artifacts:/<exp>/<run>/artifacts)."""
    return str(info.artifact_uri).removeprefix("mlflow-artifacts:/")


@pytest.fixture(params=["local", "s3", "azure"])
def destination(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str], Any]:
    if request.param == "local":
        root = tmp_path / "artifacts"
        return (
            str(root),
            {},
            lambda: sorted(
                str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".artifact-gateway" not in str(p)
            ),
        )
    backend = Backend(request.param, request)
    return backend.uri, backend.env, lambda: [key.removeprefix("root/") for key in backend.stored_keys()]


def test_gc_removes_exactly_the_deleted_runs_rows_and_artifacts_while_the_gateway_serves(
    destination: tuple[str, dict[str, str], Any], tmp_path: Path
) -> None:
    uri, env, stored = destination
    store = tmp_path / "store.db"
    with run_gateway(
        tmp_path / "gw",
        "--backend-store-uri",
        f"sqlite:///{store}",
        env=env,
        destination=uri if "://" in uri else Path(uri),
    ) as gateway:
        client = MlflowClient(gateway.url)
        made = fill(client, tmp_path)
        runs = made["runs"]
        before = stored()
        assert {f"{artifact_prefix(info)}/dir/file.txt" for info in runs.values()} <= set(before)

        dry = gc(store, uri, "--dry-run", env=env)
        assert dry.returncode == 0, dry.stderr
        assert runs["deleted"].run_id in dry.stdout and runs["kept"].run_id not in dry.stdout
        assert stored() == before and rows_of(store, runs["deleted"].run_id)["runs"] == 1

        done = gc(store, uri, env=env)
        assert done.returncode == 0, done.stderr
        audits = [json.loads(line) for line in done.stderr.splitlines() if '"audit"' in line]
        assert {line.get("run_id") for line in audits if line["action"] == "gc_delete_run"} == {
            runs["deleted"].run_id,
            runs["in-deleted-experiment"].run_id,
        }
        assert [line["experiment_id"] for line in audits if line["action"] == "gc_delete_experiment"] == [
            made["experiments"][1]
        ]

        gone = {artifact_prefix(runs[name]) for name in ("deleted", "in-deleted-experiment")}
        assert [key for key in stored() if not any(key.startswith(prefix + "/") for prefix in gone)] == [
            key for key in before if not any(key.startswith(prefix + "/") for prefix in gone)
        ]
        assert not any(key.startswith(prefix + "/") for key in stored() for prefix in gone)
        for name in ("deleted", "in-deleted-experiment"):
            assert rows_of(store, runs[name].run_id) == {
                "runs": 0,
                "params": 0,
                "tags": 0,
                "metrics": 0,
                "latest_metrics": 0,
            }
            with pytest.raises(MlflowException):
                client.get_run(runs[name].run_id)
        kept = client.get_run(runs["kept"].run_id)  # the server still serves, the rest unchanged
        assert kept.data.params == {"p": "v"} and kept.data.metrics == {"m": 1.0}
        assert [f.path for f in client.list_artifacts(runs["kept"].run_id, "dir")] == ["dir/file.txt"]
        with pytest.raises(MlflowException):
            client.get_experiment(made["experiments"][1])
        assert client.get_experiment(made["experiments"][0]).lifecycle_stage == "active"


def test_older_than_and_ids_follow_mlflow_gc(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    destination = tmp_path / "artifacts"
    with run_gateway(tmp_path / "gw", "--backend-store-uri", f"sqlite:///{store}", destination=destination) as gateway:
        client = MlflowClient(gateway.url)
        made = fill(client, tmp_path)
        runs = made["runs"]
        young = gc(store, str(destination), "--older-than", "1d")
        assert young.returncode == 0, young.stderr
        assert rows_of(store, runs["deleted"].run_id)["runs"] == 1  # deleted just now: kept for a day
        not_deleted = gc(store, str(destination), "--run-ids", runs["kept"].run_id)
        assert (
            not_deleted.returncode == 2
            and "not in the deleted lifecycle stage" in not_deleted.stdout + not_deleted.stderr
        )
        active = gc(store, str(destination), "--experiment-ids", made["experiments"][0])
        assert active.returncode == 2 and "not in the deleted lifecycle stage" in active.stdout + active.stderr
        bad_age = gc(store, str(destination), "--older-than", "soon")
        assert bad_age.returncode == 2 and "could not read an age" in bad_age.stdout + bad_age.stderr
        assert rows_of(store, runs["kept"].run_id)["runs"] == 1
        one = gc(store, str(destination), "--run-ids", runs["deleted"].run_id)
        assert one.returncode == 0, one.stderr
        assert rows_of(store, runs["deleted"].run_id)["runs"] == 0
        # as with `mlflow gc --run-ids`: the deleted experiments (and their runs) go too
        assert rows_of(store, runs["in-deleted-experiment"].run_id)["runs"] == 0


def test_gc_on_postgresql_deletes_the_points_a_batch_commits_while_it_waits(postgres_dsn: str, tmp_path: Path) -> None:
    """PostgreSQL has no foreign key from a run's points to the run (migration 0012): `gc` deletes
    them itself, and a batch still writing points when `gc` starts holds the run's row until it
    commits, so `gc` waits for it and deletes those points too: no point outlives its run."""
    store = create_database(postgres_dsn, f"gc{uuid.uuid4().hex[:12]}")
    destination = tmp_path / "artifacts"
    with run_gateway(tmp_path / "gw", "--backend-store-uri", store, destination=destination) as gateway:
        client = MlflowClient(gateway.url)
        made = fill(client, tmp_path)
        doomed = made["runs"]["deleted"].run_id
        kept = made["runs"]["kept"].run_id
        late = client.create_run(made["experiments"][0], run_name="deleted-while-writing").info.run_id
        client.log_batch(late, [Metric("m", float(i), 1, i) for i in range(500)])

    async def race() -> subprocess.CompletedProcess[str]:
        writer = await asyncpg.connect(store)
        watcher = await asyncpg.connect(store)
        try:
            batch = writer.transaction()
            await batch.start()  # a batch that has written its points and not yet committed
            points = [float(i) for i in range(500, 1500)]
            columns = (
                ["m"] * 1000, points, [False] * 1000, [1] * 1000, list(range(500, 1500)),
                [None] * 1000, [None] * 1000, [None] * 1000, ["m"], [points[-1]], [False], [1], [1499],
            )  # fmt: skip
            arrays = [write(column) for write, column in zip(_POINT_ARRAYS, columns, strict=True)]
            await writer.fetchrow(_POSTGRES_POINTS, late, *arrays)
            await watcher.execute("UPDATE runs SET lifecycle_stage = 'deleted' WHERE run_uuid = $1", late)
            collector = asyncio.create_task(asyncio.to_thread(gc, store, str(destination), "--run-ids", late))
            for _ in range(600):  # until gc waits for the batch's lock on the run's row
                waiting = await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
                if waiting or collector.done():
                    break
                await asyncio.sleep(0.1)
            assert waiting == 1, "gc did not wait for the batch holding the run's row"
            await batch.commit()
            return await collector
        finally:
            await writer.close()
            await watcher.close()

    kept_rows = rows_of(store, kept)
    done = asyncio.run(race())
    assert done.returncode == 0, done.stderr
    assert rows_of(store, late) == {"runs": 0, "params": 0, "tags": 0, "metrics": 0, "latest_metrics": 0}
    assert rows_of(store, doomed)["metrics"] == 1  # not named: kept
    assert gc(store, str(destination)).returncode == 0
    assert rows_of(store, doomed) == {"runs": 0, "params": 0, "tags": 0, "metrics": 0, "latest_metrics": 0}
    assert kept_rows["metrics"] == 1 and rows_of(store, kept) == kept_rows
