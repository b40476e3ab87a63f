"""Tracing side by side with a stock `mlflow server` in the same run: traces ingested per second by the
stock client (several threads at once, each trace a root span with two children, sent as the client
sends them: start + OTLP spans) and `search_traces` latency with 100,000 traces in the experiment.

Both servers run one worker (`--workers 1`) on SQLite. The 100,000 traces are not sent through the API (that
would take most of an hour against `mlflow server` here): after the ingest leg, each server's own
database gets copies of one trace the client logged there (its info row, tags and request metadata,
new ids and times, every tenth an ERROR) written directly with sqlite3, in each server's own schema.
Searches then ask for infos only (`include_spans=False`), as a page of the UI would.

    PYTHONPATH=. .venv/bin/python benchmarks/traces_versus_mlflow.py --traces-per-thread 50 --threads 4
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from benchmarks.versus_mlflow import mlflow_server_command, process
from tests.gateway_process import run_gateway

SEARCHES = {
    "first page (100), newest first": None,
    "trace.status = 'ERROR' (10%)": "trace.status = 'ERROR'",
    "tags.`mlflow.traceName` = 'bench' (all)": "tags.`mlflow.traceName` = 'bench'",
    "trace.timestamp_ms > (newest 1%)": "trace.timestamp_ms > {recent}",
}
BASE_TIME_MS = 1_700_000_000_000


@mlflow.trace(name="bench")
def bench(client: int, number: int) -> str:
    with mlflow.start_span("retrieve") as span:
        span.set_inputs({"query": f"question {number}"})
        span.set_outputs(["doc-1", "doc-2"])
    with mlflow.start_span("generate") as span:
        span.set_inputs({"prompt": "x" * 200})
        span.set_outputs("y" * 200)
    return f"{client}-{number}"


def ingest(url: str, threads: int, per_thread: int) -> tuple[str, float]:
    """Log `threads` x `per_thread` traces at once; (experiment id, traces per second)."""
    mlflow.set_tracking_uri(url)
    experiment_id = mlflow.create_experiment(f"bench-{time.monotonic_ns()}")
    mlflow.set_experiment(experiment_id=experiment_id)
    bench(-1, -1)  # unmeasured: the first trace pays for imports on both sides
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def log(client: int) -> None:
        barrier.wait()
        try:
            for number in range(per_thread):
                bench(client, number)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=log, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} clients failed: {errors[0]!r}")
    found = MlflowClient(url).search_traces(locations=[experiment_id], max_results=500, include_spans=False)
    if len(found) != threads * per_thread + 1:
        raise RuntimeError(f"{url}: {len(found)} traces stored of {threads * per_thread + 1}")
    return experiment_id, threads * per_thread / elapsed


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def fill(database: Path, experiment_id: str, count: int) -> None:
    """Copy one of the experiment's traces `count` times into the server's own tables."""
    conn = sqlite3.connect(database, timeout=60)
    conn.row_factory = sqlite3.Row
    info_columns = _columns(conn, "trace_info")
    id_column = "request_id" if "request_id" in info_columns else "trace_id"
    time_column = "timestamp_ms" if "timestamp_ms" in info_columns else "request_time"
    state_column = "status" if "status" in info_columns else "state"
    template = dict(
        conn.execute("SELECT * FROM trace_info WHERE experiment_id = ? LIMIT 1", (int(experiment_id),)).fetchone()
    )
    template_id = template[id_column]
    children = {}
    for table in ("trace_tags", "trace_request_metadata"):
        rows = [dict(row) for row in conn.execute(f"SELECT * FROM {table} WHERE {id_column} = ?", (template_id,))]
        children[table] = rows
    with conn:
        for start in range(0, count, 10_000):
            infos, extra = [], {table: [] for table in children}
            for n in range(start, min(start + 10_000, count)):
                trace_id = f"tr-{n:032x}"
                infos.append(
                    {
                        **template,
                        id_column: trace_id,
                        time_column: BASE_TIME_MS + n * 1000,
                        state_column: "ERROR" if n % 10 == 0 else "OK",
                    }
                )
                for table, rows in children.items():
                    extra[table] += [{**row, id_column: trace_id} for row in rows]
            for table, rows in (("trace_info", infos), *extra.items()):
                if rows:
                    names = list(rows[0])
                    conn.executemany(
                        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + name for name in names)})",
                        rows,
                    )
    conn.close()


def search_latency(url: str, experiment_id: str, repeats: int, count: int) -> dict[str, tuple[float, float]]:
    """Per search: (median, p90) seconds of `MlflowClient.search_traces` (infos only)."""
    client = MlflowClient(url)
    recent = BASE_TIME_MS + int(count * 0.99) * 1000
    results = {}
    for label, template in SEARCHES.items():
        query = template.format(recent=recent) if template else None
        client.search_traces(locations=[experiment_id], filter_string=query, include_spans=False)  # warm
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            page = client.search_traces(locations=[experiment_id], filter_string=query, include_spans=False)
            times.append(time.perf_counter() - started)
            if not page:
                raise RuntimeError(f"{url}: '{label}' found nothing")
        times.sort()
        results[label] = (statistics.median(times), times[int(len(times) * 0.9) - 1 if len(times) > 1 else 0])
    return results


@contextlib.contextmanager
def servers(work: Path) -> Iterator[dict[str, tuple[str, Path]]]:
    """The gateway and `mlflow server`, one worker each, SQLite; name -> (url, database)."""
    with contextlib.ExitStack() as stack:
        gateway_db = work / "gateway.db"
        gateway = stack.enter_context(
            run_gateway(work / "gateway", "--backend-store-uri", f"sqlite:///{gateway_db}", "--workers", "1")
        )
        mlflow_db = work / "mlflow.db"
        command = mlflow_server_command(work / "mlart", store=f"sqlite:///{mlflow_db}", workers=1)
        url, _ = stack.enter_context(process("mlflow", command, work, {}))
        yield {"gateway": (gateway.url, gateway_db), "mlflow server": (url, mlflow_db)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--traces-per-thread", type=int, default=50)
    parser.add_argument("--stored", type=int, default=100_000, help="traces in the searched experiment")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    ingested: dict[str, float] = {}
    latency: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="traces-bench-") as tmp, servers(Path(tmp)) as found:
        for name, (url, database) in found.items():
            experiment_id, ingested[name] = ingest(url, args.threads, args.traces_per_thread)
            print(f"{name}: {ingested[name]:.1f} traces/s", file=sys.stderr, flush=True)
            fill(database, experiment_id, args.stored)
            latency[name] = search_latency(url, experiment_id, args.repeats, args.stored)
            print(f"{name}: {latency[name]}", file=sys.stderr, flush=True)
    gateway, stock = "gateway", "mlflow server"
    print("| measure | gateway | `mlflow server` | gateway / MLflow |\n|---|---|---|---|")
    print(
        f"| traces ingested per second ({args.threads} client threads, {args.threads * args.traces_per_thread} "
        f"traces of 3 spans) | {ingested[gateway]:.1f} | {ingested[stock]:.1f} | "
        f"{ingested[gateway] / ingested[stock]:.1f}x |"
    )
    for label in SEARCHES:
        ours, theirs = latency[gateway][label], latency[stock][label]
        print(
            f"| `search_traces` with {args.stored:,} traces: {label}, median (p90) | {ours[0] * 1000:.0f} ms "
            f"({ours[1] * 1000:.0f}) | {theirs[0] * 1000:.0f} ms ({theirs[1] * 1000:.0f}) | "
            f"{theirs[0] / ours[0]:.1f}x |"
        )


if __name__ == "__main__":
    main()
