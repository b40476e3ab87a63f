"""How fast the UI's pages render with 10,000 runs in one experiment (issue 8's figure).

Not a test: `.venv/bin/python benchmarks/ui_pages.py [--runs 10000] [--repeat 30]`.

Seeds a SQLite store (the default) with one experiment of N runs, each with 10 params, 5 metrics
(with 20 points of history each) and 3 tags, written straight into the migrated database for speed
(the API would take minutes), then starts a real gateway and requests each page `--repeat` times
after a warm-up. The server time is the gateway's own `duration_ms` from its access log, matched by
request id; the client time (loopback, whole body read) is reported beside it. Writes
docs/benchmarks/ui.md.
"""

from __future__ import annotations

import argparse
import datetime
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
PARAMS, METRICS, TAGS, HISTORY = 10, 5, 3, 20


def seed(database: Path, runs: int) -> tuple[int, list[str]]:
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
        for k in range(METRICS):
            values = [rng.random() for _ in range(HISTORY)]
            metric_rows += [(run_id, f"m{k}", v, False, start + s * 1000, s) for s, v in enumerate(values)]
            latest_rows.append((run_id, f"m{k}", values[-1], False, start + (HISTORY - 1) * 1000, HISTORY - 1))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the experiment (10000)")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page (30)")
    parser.add_argument("--report", type=Path, default=REPORT, help=f"markdown report ({REPORT})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ui-bench-") as scratch:
        workdir = Path(scratch)
        store = f"sqlite:///{workdir / 'mlruns.db'}"
        run_cli("migrate", "--backend-store-uri", store).check_returncode()
        started = time.perf_counter()
        experiment_id, ids = seed(workdir / "mlruns.db", args.runs)
        print(f"seeded {args.runs} runs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        compare = "&".join(f"runs={run_id}" for run_id in ids[:10])
        pages = {
            "experiments list": "/experiments",
            "runs page 1 (newest first, 100 runs)": f"/experiments/{experiment_id}",
            "runs sorted by a metric": f"/experiments/{experiment_id}?order_by=metrics.%60m0%60+DESC",
            "runs filtered (metrics.m0 > 0.5 and params.p0 = '0.1')": (
                f"/experiments/{experiment_id}?filter=metrics.m0+%3E+0.5+and+params.p0+%3D+%270.1%27"
            ),
            f"runs, last page ({args.runs // 100})": f"/experiments/{experiment_id}?page={args.runs // 100}",
            "runs page of 1,000 runs": f"/experiments/{experiment_id}?max_results=1000",
            "one run": f"/experiments/{experiment_id}/runs/{ids[0]}",
            "compare 10 runs": f"/compare-runs?{compare}",
        }
        with run_gateway(workdir, "--backend-store-uri", store) as gateway:
            results = {name: measure(gateway, path, args.repeat) for name, path in pages.items()}
    lines = [
        "# UI page times with many runs",
        "",
        f"Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({platform.processor() or platform.machine()}, {platform.python_version()}), by "
        f"`benchmarks/ui_pages.py --runs {args.runs} --repeat {args.repeat}`: one experiment of {args.runs:,} runs, "
        f"each with {PARAMS} params, {METRICS} metrics ({HISTORY} points each) and {TAGS} tags, in SQLite (the "
        "default store); one gateway worker. Server time is the gateway's own `duration_ms` (access log) from "
        "request to last byte; client time adds loopback and reading the page. A run page's charts load their "
        "points afterwards from the tracking API (not counted here).",
        "",
        "| page | server p50 ms | server p95 ms | client p50 ms | client p95 ms | HTML KiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['server_p50']:.1f} | {r['server_p95']:.1f} | {r['client_p50']:.1f} | "
            f"{r['client_p95']:.1f} | {r['bytes'] / 1024:.0f} |"
        )
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
