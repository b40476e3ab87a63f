"""How fast `artifact-gateway import-mlflow` copies metric points, beside MLflow's own SQL store.

Not a test: run it by hand. It builds an MLflow tracking database in MLflow's own schema (created by
MLflow's SqlAlchemyStore, so every migration up to 3.17 ran) with `--runs` runs of `--points` points
each (params and tags too), then times the import into a new SQLite store and, with
`--postgresql`, into a throwaway PostgreSQL cluster (tests/postgres_server.py). The baseline is
MLflow itself writing points: `SqlAlchemyStore.log_batch` (1,000 points a call, the most it takes)
into its own SQLite database, timed on a sample of the runs in the same run of the script.

    .venv/bin/python benchmarks/import_speed.py --runs 1000 --points 1500 --postgresql
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_source(path: Path, runs: int, points: int) -> int:
    """An MLflow database at `path` with `runs` runs of `points` points; the number of points."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    SqlAlchemyStore(f"sqlite:///{path}", str(path.parent / "mlartifacts")).engine.dispose()
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) "
        "VALUES ('bench', 'mlflow-artifacts:/1', 'active', 0, 0)"
    )
    experiment_id = db.execute("SELECT experiment_id FROM experiments WHERE name = 'bench'").fetchone()[0]
    for number in range(runs):
        run_id = uuid.uuid4().hex
        db.execute(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
            "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) VALUES "
            "(?, ?, 'LOCAL', '', '', 'bench', 'FINISHED', ?, ?, '', 'active', ?, ?)",
            (
                run_id,
                f"run-{number}",
                number,
                number + 1,
                f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts",
                experiment_id,
            ),
        )
        db.executemany(
            "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", [(f"p{i}", str(i), run_id) for i in range(5)]
        )
        db.executemany(
            "INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", [(f"t{i}", str(i), run_id) for i in range(5)]
        )
        keys = ("loss", "accuracy", "lr")
        db.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)",
            [(keys[i % 3], i * 0.001, 1_700_000_000_000 + i, run_id, i // 3) for i in range(points)],
        )
        db.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, 0, ?)",
            [(key, 0.0, 1_700_000_000_000, 0, run_id) for key in keys],
        )
    db.commit()
    db.close()
    return runs * points


def time_import(source: Path, store: str) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "import-mlflow",
            "--from",
            f"sqlite:///{source}",
            "--backend-store-uri",
            store,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import failed:\n{done.stderr[-3000:]}")
    return elapsed, done.stderr


def mlflow_log_batch_rate(workdir: Path, runs: int, points: int) -> float:
    """Points a second MLflow's own SqlAlchemyStore writes with log_batch into SQLite."""
    from mlflow.entities import Metric
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(f"sqlite:///{workdir / 'mlflow-baseline.db'}", str(workdir / "art"))
    experiment_id = store.create_experiment("baseline")
    total, elapsed = 0, 0.0
    keys = ("loss", "accuracy", "lr")
    for _ in range(runs):
        run = store.create_run(experiment_id, "bench", 0, [], "run")
        metrics = [Metric(keys[i % 3], i * 0.001, 1_700_000_000_000 + i, i // 3) for i in range(points)]
        started = time.perf_counter()
        for at in range(0, len(metrics), 1000):
            store.log_batch(run.info.run_id, metrics=metrics[at : at + 1000], params=[], tags=[])
        elapsed += time.perf_counter() - started
        total += len(metrics)
    store.engine.dispose()
    return total / elapsed


def report(target: str, total: int, elapsed: float, baseline: float) -> None:
    rate = total / elapsed
    ratio = rate / baseline
    print(f"import-mlflow into {target}: {elapsed:.1f} s, {rate:,.0f} points/s ({ratio:.1f}x MLflow's log_batch)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=1500, help="metric points per run")
    parser.add_argument("--baseline-runs", type=int, default=20, help="runs MLflow's log_batch writes for the baseline")
    parser.add_argument("--postgresql", action="store_true", help="also import into a throwaway PostgreSQL cluster")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        source = workdir / "mlflow.db"
        started = time.perf_counter()
        total = build_source(source, args.runs, args.points)
        built = time.perf_counter() - started
        print(f"source: {args.runs:,} runs, {total:,} metric points in MLflow's schema ({built:.1f} s to build)")
        baseline = mlflow_log_batch_rate(workdir, args.baseline_runs, args.points)
        print(f"MLflow SqlAlchemyStore.log_batch into SQLite: {baseline:,.0f} points/s")
        elapsed, _ = time_import(source, f"sqlite:///{workdir / 'gateway.db'}")
        report("SQLite", total, elapsed, baseline)
        if args.postgresql:
            sys.path.insert(0, str(ROOT))
            from tests.postgres_server import create_database, postgres_cluster

            with postgres_cluster() as dsn:
                store = create_database(dsn, "bench")
                elapsed, _ = time_import(source, store)
                report("PostgreSQL", total, elapsed, baseline)


if __name__ == "__main__":
    main()
