"""The stock client's tracking calls against the gateway and `mlflow server` (part of client_versus_mlflow.py).

Per server, seeded once (unmeasured, the same data in both stores): 600 runs with a metric, a param
and a tag each, logged through the client; one run holding a metric history of `--history-points`
points (log_batch of 1,000); `--big-runs` runs written straight into each server's SQLite database
(the same rows, in each server's own schema). Then per run, the servers' order alternating:
`log_metric` and `log_batch` from 4 and 16 threads (each thread its own `MlflowClient`, all on one
run), `search_runs` (a metric and a param filter, ordered by the metric) over the 600 and over the
big set, `get_metric_history` of the long history, `mlflow.sklearn.log_model` of a small scikit-learn
model and `mlflow.sklearn.load_model` back (its predictions checked). Every search's answer and every
history is checked against what was logged.

The client's own cost is measured too: the same `log_metric` threads against a do-nothing server
answering `{}` (benchmarks/ceiling_server.py's idea for JSON), the most any server could give it here.
"""

from __future__ import annotations

import math
import sqlite3
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BATCH = 1000
"""Metrics per log_batch: MLflow's limit."""
SEARCH_FILTER = "metrics.score > 0.5 and params.kind = 'a'"
SEARCH_ORDER = ["metrics.score DESC"]


def _threads(count: int, work: Callable[[int], None]) -> float:
    """Run `work(n)` in `count` threads at once; the seconds until all are done."""
    errors: list[BaseException] = []

    def guarded(n: int) -> None:
        try:
            work(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(n,)) for n in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    return seconds


def log_metric_rate(url: str, run_id: str, threads: int, calls: int) -> float:
    """`log_metric` calls per second from `threads` threads of `calls` each."""
    from mlflow import MlflowClient

    def work(n: int) -> None:
        client = MlflowClient(url)
        for step in range(calls):
            client.log_metric(run_id, f"t{threads}-{n}", float(step), timestamp=step, step=step)

    return threads * calls / _threads(threads, work)


def log_batch_rate(url: str, run_id: str, threads: int, batches: int) -> float:
    """Metrics per second through `log_batch` of 1,000 metrics, `batches` per thread."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    def work(n: int) -> None:
        client = MlflowClient(url)
        for b in range(batches):
            metrics = [Metric(f"b{threads}-{n}", float(i), i, b * BATCH + i) for i in range(BATCH)]
            client.log_batch(run_id, metrics=metrics, synchronous=True)

    return threads * batches * BATCH / _threads(threads, work)


def seed(url: str, history_points: int) -> dict[str, str]:
    """The searched experiment (600 runs) and the long history's run, through the client."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(url)
    searched = client.create_experiment(f"search-{uuid.uuid4().hex[:6]}")

    def runs(n: int) -> None:
        local = MlflowClient(url)
        for i in range(n * 150, n * 150 + 150):
            run = local.create_run(searched, start_time=i)
            local.log_batch(
                run.info.run_id,
                metrics=[Metric("score", (i % 100) / 100, i, 0)],
                params=[Param("kind", "ab"[i % 2])],
                tags=[RunTag("group", str(i % 7))],
                synchronous=True,
            )

    _threads(4, runs)
    history_run = client.create_run(client.create_experiment(f"history-{uuid.uuid4().hex[:6]}")).info.run_id
    for start in range(0, history_points, BATCH):
        points = [Metric("loss", 1 / (1 + i), i, i) for i in range(start, min(start + BATCH, history_points))]
        client.log_batch(history_run, metrics=points, synchronous=True)
    work_experiment = client.create_experiment(f"work-{uuid.uuid4().hex[:6]}")
    return {"searched": searched, "history_run": history_run, "work_experiment": work_experiment}


def seed_big(url: str, database: Path, count: int, server: str) -> str:
    """`count` runs written straight into `server`'s SQLite database, each with a metric, a param and a
    tag (the same values for both servers); the experiment made through the client."""
    from mlflow import MlflowClient

    experiment = MlflowClient(url).create_experiment(f"big-{uuid.uuid4().hex[:6]}")
    ids = [uuid.uuid4().hex for _ in range(count)]
    connection = sqlite3.connect(database, timeout=60)
    try:
        with connection:
            if server == "mlflow":
                connection.executemany(
                    "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
                    "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
                    "VALUES (?, ?, 'LOCAL', '', '', 'bench', 'FINISHED', ?, ?, '', 'active', ?, ?)",
                    [
                        (r, f"r{i}", i, i + 1, f"mlflow-artifacts:/{experiment}/{r}/artifacts", experiment)
                        for i, r in enumerate(ids)
                    ],
                )
            else:
                connection.executemany(
                    "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, "
                    "lifecycle_stage, artifact_uri) VALUES (?, ?, ?, 'bench', 'FINISHED', ?, ?, 'active', ?)",
                    [
                        (r, experiment, f"r{i}", i, i + 1, f"mlflow-artifacts:/{experiment}/{r}/artifacts")
                        for i, r in enumerate(ids)
                    ],
                )
            metric_rows = [(r, "score", (i % 1000) / 1000, i, 0) for i, r in enumerate(ids)]
            connection.executemany(
                "INSERT INTO latest_metrics (run_uuid, key, value, timestamp, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)",
                metric_rows,
            )
            connection.executemany(
                "INSERT INTO metrics (run_uuid, key, value, timestamp, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)",
                metric_rows,
            )
            connection.executemany(
                "INSERT INTO params (run_uuid, key, value) VALUES (?, 'kind', ?)",
                [(r, "ab"[i % 2]) for i, r in enumerate(ids)],
            )
            connection.executemany(
                "INSERT INTO tags (run_uuid, key, value) VALUES (?, 'mlflow.runName', ?)",
                [(r, f"r{i}") for i, r in enumerate(ids)],
            )
    finally:
        connection.close()
    return experiment


def _median_seconds(call: Callable[[], Any], times: int) -> tuple[float, Any]:
    seconds, result = [], None
    for _ in range(times):
        started = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def search(url: str, experiment: str) -> list[Any]:
    from mlflow import MlflowClient

    return list(MlflowClient(url).search_runs([experiment], SEARCH_FILTER, order_by=SEARCH_ORDER))


def expected_search(count: int, modulo: int) -> int:
    """How many of `count` seeded runs match SEARCH_FILTER (score (i % modulo)/modulo > 0.5, kind 'a': i even)."""
    return sum(1 for i in range(count) if i % 2 == 0 and (i % modulo) / modulo > 0.5)


@contextmanager
def tracking_uri(url: str) -> Iterator[None]:
    import mlflow

    mlflow.set_tracking_uri(url)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


def model_legs(url: str) -> dict[str, float]:
    """`mlflow.sklearn.log_model` and `load_model` of a small fitted model (predictions checked)."""
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 8))
    model = LogisticRegression().fit(x, x[:, 0] > 0)
    with tracking_uri(url):
        mlflow.set_experiment("models")
        with mlflow.start_run():
            started = time.perf_counter()
            # explicit requirements: inferring them costs the client seconds, the same for both servers
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
            logged = time.perf_counter() - started
        started = time.perf_counter()
        loaded = mlflow.sklearn.load_model(info.model_uri)
        load = time.perf_counter() - started
    if not (loaded.predict(x) == model.predict(x)).all():
        raise AssertionError(f"{url}: the loaded model predicts otherwise")
    return {"log_model_s": logged, "load_model_s": load}


def warm_up(url: str, seeded: dict[str, Any]) -> None:
    """A few of each call, unmeasured: every worker imports what it lazily imports."""
    from mlflow import MlflowClient

    run_id = MlflowClient(url).create_run(seeded["work_experiment"]).info.run_id
    log_metric_rate(url, run_id, 4, 5)
    log_batch_rate(url, run_id, 4, 1)
    search(url, seeded["searched"])
    MlflowClient(url).get_metric_history(seeded["history_run"], "loss")


def big_search_seconds(url: str, seeded: dict[str, Any], args: Any) -> float:
    """The median of 3 searches over the big set, or infinity when the server gives no answer within
    `args.search_timeout` s (MLflow took more than 5 minutes over 100,000 runs here). Run last, just
    before the servers stop, so a search the server keeps working on slows nothing else measured."""
    import mlflow.environment_variables as env

    from benchmarks.versus_mlflow import environment

    limits = {
        env.MLFLOW_HTTP_REQUEST_TIMEOUT.name: str(args.search_timeout),
        env.MLFLOW_HTTP_REQUEST_MAX_RETRIES.name: "0",
    }
    try:
        with environment(**limits):
            seconds, found = _median_seconds(lambda: search(url, seeded["big"]), 3)
    except Exception as exc:  # the client's timeout, whatever it is wrapped in
        print(f"{url}: no answer to the search over {args.big_runs} runs: {exc}", file=sys.stderr)
        return math.inf
    expected = min(1000, expected_search(args.big_runs, 1000))
    if len(found) != expected:
        raise AssertionError(f"{url}: search over the big set found {len(found)}, expected {expected}")
    return seconds


def tracking_legs(url: str, seeded: dict[str, Any], args: Any) -> dict[str, float]:
    """One run of every tracking call on one server."""
    from mlflow import MlflowClient

    sample: dict[str, float] = {}
    run_id = MlflowClient(url).create_run(seeded["work_experiment"]).info.run_id
    sample["log_metric_4_cps"] = log_metric_rate(url, run_id, 4, args.metric_calls)
    sample["log_metric_16_cps"] = log_metric_rate(url, run_id, 16, max(1, args.metric_calls // 4))
    sample["log_batch_4_mps"] = log_batch_rate(url, run_id, 4, args.batches)
    sample["log_batch_16_mps"] = log_batch_rate(url, run_id, 16, max(1, args.batches // 4))
    seconds, found = _median_seconds(lambda: search(url, seeded["searched"]), 5)
    if len(found) != expected_search(600, 100):
        raise AssertionError(f"{url}: search over 600 runs found {len(found)}, expected {expected_search(600, 100)}")
    sample["search_runs_600_s"] = seconds
    seconds, history = _median_seconds(lambda: MlflowClient(url).get_metric_history(seeded["history_run"], "loss"), 3)
    if sorted(m.step for m in history) != list(range(args.history_points)):
        raise AssertionError(f"{url}: get_metric_history returned {len(history)} points")
    sample["metric_history_s"] = seconds
    sample.update(model_legs(url))
    return sample


FLOOR_METRICS = (
    "log_metric_4_cps",
    "log_metric_16_cps",
    "log_batch_4_mps",
    "log_batch_16_mps",
    "search_runs_600_s",
    "metric_history_s",
)
"""The calls timed against the replaying server (benchmarks/ceiling_server.py --replay-from)."""


def floor_legs(url: str, upstream: str, seeded: dict[str, Any], args: Any) -> dict[str, float]:
    """The stock client's own floor: the same calls against a server replaying `upstream`'s answers.

    `url` answers each call with the exact bytes `upstream` (the gateway, seeded as `seeded`) answered the
    first time (a call made here once, unmeasured, records them), so the time is the client's alone.
    """
    from mlflow import MlflowClient

    run_id = MlflowClient(upstream).create_run(seeded["work_experiment"]).info.run_id
    log_metric_rate(url, run_id, 1, 1)  # records each answer once
    log_batch_rate(url, run_id, 1, 1)
    sample: dict[str, float] = {}
    sample["log_metric_4_cps"] = log_metric_rate(url, run_id, 4, args.metric_calls)
    sample["log_metric_16_cps"] = log_metric_rate(url, run_id, 16, max(1, args.metric_calls // 4))
    sample["log_batch_4_mps"] = log_batch_rate(url, run_id, 4, args.batches)
    sample["log_batch_16_mps"] = log_batch_rate(url, run_id, 16, max(1, args.batches // 4))
    search(url, seeded["searched"])
    seconds, found = _median_seconds(lambda: search(url, seeded["searched"]), 5)
    if len(found) != expected_search(600, 100):
        raise AssertionError(f"{url}: replayed search found {len(found)}, expected {expected_search(600, 100)}")
    sample["search_runs_600_s"] = seconds
    MlflowClient(url).get_metric_history(seeded["history_run"], "loss")
    seconds, history = _median_seconds(lambda: MlflowClient(url).get_metric_history(seeded["history_run"], "loss"), 3)
    if sorted(m.step for m in history) != list(range(args.history_points)):
        raise AssertionError(f"{url}: replayed get_metric_history returned {len(history)} points")
    sample["metric_history_s"] = seconds
    return sample
