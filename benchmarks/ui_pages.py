"""How fast the UI's pages render with many runs in one experiment (issues 8 and 24).

Not a test: `.venv/bin/python benchmarks/ui_pages.py [--runs 100000] [--history 2] [--repeat 10]`
(about 5 minutes with these; the seeding is most of it).

Seeds a SQLite store (the default) with one experiment of N runs, each with 10 params, 5 metrics
(with `--history` points each) and 3 tags, nine runs in ten nested under a parent (tag
mlflow.parentRunId, as a grid search logs them), written straight into the migrated database for
speed (the API would take hours), then starts a real gateway and requests each page `--repeat` times
after a warm-up. The server time is the gateway's own `duration_ms` from its access log, matched by
request id; the client time (loopback, whole body read) is reported beside it. The CSV export of
every run is timed `--csv-repeat` times, as runs and MiB per second. Writes docs/benchmarks/ui.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.gateway_process import RunningGateway, run_cli, run_gateway

REPORT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "ui.md"
PARAMS, METRICS, TAGS = 10, 5, 3
FAMILY = 10
"""Every tenth run is a parent; the nine after it are its children."""


def seed(database: Path, runs: int, history: int) -> tuple[int, list[str]]:
    """One experiment with `runs` runs; returns its id and the run ids."""
    connection = sqlite3.connect(database)
    now = int(time.time() * 1000)
    cursor = connection.execute(
        "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) "
        "VALUES (?, '', 'active', ?, ?)",
        (f"bench-{runs}", now, now),
    )
    experiment_id = int(cursor.lastrowid or 0)
    connection.execute(
        "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
        (f"mlflow-artifacts:/{experiment_id}", experiment_id),
    )
    rng = random.Random(7)
    ids = [uuid.uuid4().hex for _ in range(runs)]
    run_rows, param_rows, tag_rows, metric_rows, latest_rows = [], [], [], [], []
    for index, run_id in enumerate(ids):
        start = now - (runs - index) * 60_000
        run_rows.append(
            (
                run_id,
                experiment_id,
                f"run-{index}",
                "bench",
                "FINISHED",
                start,
                start + 30_000,
                "active",
                f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts",
            )
        )
        param_rows += [(run_id, f"p{k}", str(rng.choice([0.1, 0.01, 0.001, 32, 64, 128]))) for k in range(PARAMS)]
        tag_rows += [(run_id, f"t{k}", rng.choice(["a", "b", "c"])) for k in range(TAGS)]
        if index % FAMILY:
            tag_rows.append((run_id, "mlflow.parentRunId", ids[index - index % FAMILY]))
        for k in range(METRICS):
            values = [rng.random() for _ in range(history)]
            metric_rows += [(run_id, f"m{k}", v, False, start + s * 1000, s) for s, v in enumerate(values)]
            latest_rows.append((run_id, f"m{k}", values[-1], False, start + (history - 1) * 1000, history - 1))
    connection.executemany(
        "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, lifecycle_stage, "
        "artifact_uri) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        run_rows,
    )
    connection.executemany("INSERT INTO params (run_uuid, key, value) VALUES (?, ?, ?)", param_rows)
    connection.executemany("INSERT INTO tags (run_uuid, key, value) VALUES (?, ?, ?)", tag_rows)
    connection.executemany(
        "INSERT INTO metrics (run_uuid, key, value, is_nan, timestamp, step) VALUES (?, ?, ?, ?, ?, ?)", metric_rows
    )
    connection.executemany(
        "INSERT INTO latest_metrics (run_uuid, key, value, is_nan, timestamp, step) VALUES (?, ?, ?, ?, ?, ?)",
        latest_rows,
    )
    connection.commit()
    connection.close()
    return experiment_id, ids


def measure(gateway: RunningGateway, path: str, repeat: int) -> dict[str, float]:
    """Median and 95th percentile of server and client milliseconds for `repeat` GETs of `path`."""
    session = requests.Session()
    for _ in range(3):  # warm-up: templates compiled, caches filled
        session.get(gateway.url + path, timeout=60).raise_for_status()
    request_ids, client = [], []
    for _ in range(repeat):
        request_id = uuid.uuid4().hex
        started = time.perf_counter()
        response = session.get(gateway.url + path, headers={"X-Request-Id": request_id}, timeout=60)
        client.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        request_ids.append(request_id)
    wanted = set(request_ids)
    server = [
        float(line["duration_ms"])  # type: ignore[arg-type]
        for line in gateway.log_lines()
        if line.get("msg") == "request" and line.get("request_id") in wanted
    ]
    assert len(server) == repeat, "every timed request must appear in the access log"
    q = statistics.quantiles
    return {
        "server_p50": statistics.median(server),
        "server_p95": q(server, n=20)[-1],
        "client_p50": statistics.median(client),
        "client_p95": q(client, n=20)[-1],
        "bytes": len(response.content),
    }


def measure_export(gateway: RunningGateway, path: str, repeat: int) -> dict[str, float]:
    """Seconds, rows and bytes of streaming `path` (a CSV export) whole, the best of `repeat`."""
    best: dict[str, float] = {}
    for _ in range(repeat):
        started = time.perf_counter()
        size = lines = 0
        with requests.get(gateway.url + path, stream=True, timeout=600) as response:
            response.raise_for_status()
            for chunk in response.iter_content(1 << 16):
                size += len(chunk)
                lines += chunk.count(b"\n")
        seconds = time.perf_counter() - started
        if not best or seconds < best["seconds"]:
            best = {"seconds": seconds, "rows": lines - 1, "bytes": size}
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the experiment (100000)")
    parser.add_argument("--history", type=int, default=2, help="points per metric per run (2)")
    parser.add_argument("--repeat", type=int, default=10, help="timed requests per page (10)")
    parser.add_argument("--csv-repeat", type=int, default=2, help="timed CSV exports of every run (2)")
    parser.add_argument("--report", type=Path, default=REPORT, help=f"markdown report ({REPORT})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ui-bench-") as scratch:
        workdir = Path(scratch)
        store = f"sqlite:///{workdir / 'mlruns.db'}"
        run_cli("migrate", "--backend-store-uri", store).check_returncode()
        started = time.perf_counter()
        experiment_id, ids = seed(workdir / "mlruns.db", args.runs, args.history)
        print(f"seeded {args.runs} runs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        compare = "&".join(f"runs={run_id}" for run_id in ids[:10])
        runs = f"/experiments/{experiment_id}"
        columns = "&columns=metrics.m0&columns=metrics.m1&columns=params.p0&columns=params.p1&columns=tags.t0"
        pages = {
            "experiments list": "/experiments",
            "runs page 1 (tree: top-level runs, newest first, 100)": runs,
            "runs page 1, a parent's 9 children expanded": f"{runs}?expand={ids[-FAMILY]}",
            "runs page 1, flat (every run, newest first, 100)": f"{runs}?nesting=flat",
            "runs sorted by a metric (flat)": f"{runs}?nesting=flat&order_by=metrics.%60m0%60+DESC",
            "runs filtered (metrics.m0 > 0.5 and params.p0 = '0.1', flat)": (
                f"{runs}?nesting=flat&filter=metrics.m0+%3E+0.5+and+params.p0+%3D+%270.1%27"
            ),
            f"runs, last page (flat, {args.runs // 100})": f"{runs}?nesting=flat&page={args.runs // 100}",
            "runs page of 1,000 runs (flat)": f"{runs}?nesting=flat&max_results=1000",
            "runs of the experiment through /runs (cross-experiment view)": f"/runs?experiments={experiment_id}",
            "one run (a parent: its children listed)": f"{runs}/runs/{ids[-FAMILY]}",
            "compare 10 runs": f"/compare-runs?{compare}",
        }
        exports = {
            f"CSV of every run ({args.runs:,}, newest first, 5 columns)": (
                f"/runs.csv?experiments={experiment_id}&nesting=flat{columns}"
            ),
            f"CSV of every run sorted by a metric ({args.runs:,})": (
                f"/runs.csv?experiments={experiment_id}&nesting=flat&order_by=metrics.%60m0%60+DESC{columns}"
            ),
        }
        with run_gateway(workdir, "--backend-store-uri", store) as gateway:
            results = {name: measure(gateway, path, args.repeat) for name, path in pages.items()}
            exported = {name: measure_export(gateway, path, args.csv_repeat) for name, path in exports.items()}
    lines = [
        "# UI page times with many runs",
        "",
        f"Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({platform.processor() or platform.machine()}, {platform.python_version()}), by "
        f"`benchmarks/ui_pages.py --runs {args.runs} --history {args.history} --repeat {args.repeat} --csv-repeat "
        f"{args.csv_repeat}`: one experiment of {args.runs:,} runs, each with {PARAMS} params, {METRICS} metrics "
        f"({args.history} points each) and {TAGS} tags, nine in ten nested under a parent, in SQLite (the "
        "default store); one gateway worker. Server time is the gateway's own `duration_ms` (access log) from "
        "request to last byte; client time adds loopback and reading the page. A run page's charts load their "
        "points afterwards from the tracking API (not counted here). "
        f"Load average at the end: {os.getloadavg()[0]:.1f}.",
        "",
        "| page | server p50 ms | server p95 ms | client p50 ms | client p95 ms | HTML KiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['server_p50']:.1f} | {r['server_p95']:.1f} | {r['client_p50']:.1f} | "
            f"{r['client_p95']:.1f} | {r['bytes'] / 1024:.0f} |"
        )
    lines += [
        "",
        "CSV export (streamed, every matching run; the best of the timed exports, whole body read):",
        "",
        "| export | rows | seconds | runs/s | MiB/s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in exported.items():
        lines.append(
            f"| {name} | {r['rows']:,.0f} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} | "
            f"{r['bytes'] / r['seconds'] / (1 << 20):.2f} |"
        )
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
