"""What the Prometheus metrics cost: per request, per scrape, and on small requests end to end.

Not a test: run it by hand (`.venv/bin/python benchmarks/metrics_overhead.py`).

- micro: the updates one request makes (`observe_request`, plus the in-flight gauge of a transfer),
  CPU time in a loop in multiprocess mode (files in a private directory, as `serve` runs) and in
  memory. Each mode runs in its own child process: prometheus_client picks it at import.
- scrape: `exposition()` over the files of 1 and 8 workers with a realistic set of label values.
- end to end (`--base-source DIR` to compare): small GETs through a real gateway, this tree against
  another source tree of the gateway (e.g. `git archive <commit> gateway repositories | tar -x -C DIR`),
  alternating runs: requests per second, and the server's CPU time per request (steadier than the
  rate on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROUTES = [
    "/api/2.0/mlflow-artifacts/artifacts/{path}",
    "/api/2.0/mlflow-artifacts/artifacts",
    "/api/2.0/mlflow-artifacts/mpu/part",
    "/api/2.0/mlflow/runs/get",
    "/api/2.0/mlflow/runs/log-batch",
    "/api/2.0/mlflow/runs/search",
    "/health",
    "/metrics",
    "unmatched",
]


def _micro(iterations: int) -> dict[str, float]:
    """Runs in a child: microseconds per request for each kind of request."""
    from gateway.metrics import metrics, transfer

    m = metrics()
    route = ROUTES[0]
    results: dict[str, float] = {"multiprocess": float(m.multiprocess)}
    for name, body in (
        ("api call", lambda: m.observe_request("GET", ROUTES[3], 200, 0.004, **_no_bytes)),
        ("upload", lambda: _upload(m, route, transfer)),
        ("download", lambda: _download(m, route, transfer)),
    ):
        for _ in range(1000):  # warm: label children exist, files are mapped
            body()
        started = time.process_time()  # CPU time: the machine's other load does not count
        for _ in range(iterations):
            body()
        results[name] = (time.process_time() - started) / iterations * 1e6
    return results


_no_bytes = {"backend": "local", "bytes_in": 0, "bytes_out": 0, "backend_error": None}


def _upload(m: Any, route: str, transfer: Any) -> None:
    with transfer(m.uploads_in_flight):
        pass
    m.observe_request("PUT", route, 200, 0.012, backend="local", bytes_in=4096, bytes_out=0, backend_error=None)


def _download(m: Any, route: str, transfer: Any) -> None:
    with transfer(m.downloads_in_flight):
        pass
    m.observe_request("GET", route, 200, 0.003, backend="local", bytes_in=0, bytes_out=4096, backend_error=None)


def _scrape(workers: int, repeats: int) -> float:
    """Runs in a child (multiprocess mode): milliseconds per exposition over `workers` workers' files."""
    from gateway.metrics import metrics

    m = metrics()
    for route in ROUTES:
        for method in ("GET", "PUT", "POST", "HEAD", "DELETE"):
            for status in (200, 400, 404, 502):
                m.observe_request(method, route, status, 0.01, **_no_bytes)
    m.observe_request("PUT", ROUTES[0], 200, 0.1, backend="local", bytes_in=1, bytes_out=1, backend_error="NotFound")
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    for fake_pid in range(1, workers):  # the same files again under other pids: what N workers leave
        for file in list(directory.glob(f"*_{os.getpid()}.db")):
            shutil.copy(file, directory / file.name.replace(str(os.getpid()), f"9999{fake_pid}"))
    body = m.exposition()
    started = time.process_time()
    for _ in range(repeats):
        m.exposition()
    elapsed = (time.process_time() - started) / repeats * 1e3
    lines = body.count(b"\n")
    print(f"  ({workers} worker(s): {len(body):,} bytes, {lines:,} lines per scrape)", file=sys.stderr)
    return elapsed


def in_child(code: str, *, multiprocess: bool) -> object:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    directory = tempfile.mkdtemp(prefix="metrics-bench-")
    if multiprocess:
        env["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                f"import metrics_overhead as b; print(json.dumps({code}))",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    sys.stderr.write(result.stderr)
    return json.loads(result.stdout)


async def _get_loop(url: str, count: int, concurrency: int) -> float:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        remaining = count

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                async with session.get(url) as response:
                    await response.read()
                    assert response.status == 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


def end_to_end(source: str | None, requests_per_run: int) -> tuple[float, float]:
    """Requests per second, and the server's CPU microseconds per request."""
    import psutil
    import requests

    from tests.gateway_process import run_gateway

    env = {"PYTHONPATH": source} if source else {}
    with tempfile.TemporaryDirectory() as workdir, run_gateway(Path(workdir), env=env) as gateway:
        assert requests.put(gateway.artifact_url("small.bin"), data=os.urandom(4096), timeout=30).status_code == 200
        has_metrics = requests.get(f"{gateway.url}/metrics", timeout=30).status_code == 200
        assert has_metrics == (source is None), "the base tree must be the one without metrics"
        asyncio.run(_get_loop(gateway.artifact_url("small.bin"), 500, 16))  # warm up
        server = psutil.Process(gateway.proc.pid)
        cpu = sum(server.cpu_times()[:2])
        rate = asyncio.run(_get_loop(gateway.artifact_url("small.bin"), requests_per_run, 16))
        return rate, (sum(server.cpu_times()[:2]) - cpu) / requests_per_run * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=200_000)
    parser.add_argument("--base-source", help="a gateway source tree without metrics, for the end-to-end A/B")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()

    print("micro: microseconds of metric updates per request")
    for multiprocess in (True, False):
        result = in_child(f"b._micro({args.iterations})", multiprocess=multiprocess)
        assert isinstance(result, dict) and bool(result.pop("multiprocess")) == multiprocess
        mode = "multiprocess (files)" if multiprocess else "in memory"
        print(f"  {mode:22}" + "".join(f"  {name}: {value:.2f}" for name, value in result.items()))
    print("scrape: milliseconds per exposition")
    for workers in (1, 8):
        print(f"  {workers} worker(s): {in_child(f'b._scrape({workers}, 200)', multiprocess=True):.2f}")
    if args.base_source:
        print(f"end to end: 4 KiB GETs, 16 in flight, one worker, {args.requests} per run, alternating")
        runs: dict[str, list[tuple[float, float]]] = {"without metrics": [], "with metrics": []}
        for _ in range(args.runs):
            runs["without metrics"].append(end_to_end(args.base_source, args.requests))
            runs["with metrics"].append(end_to_end(None, args.requests))
        for name, results in runs.items():
            rates, cpus = [round(r) for r, _ in results], [round(c) for _, c in results]
            print(
                f"  {name:16} GETs/s {rates} median {statistics.median(rates):.0f}; "
                f"server CPU us/request {cpus} median {statistics.median(cpus):.0f}"
            )


if __name__ == "__main__":
    main()
