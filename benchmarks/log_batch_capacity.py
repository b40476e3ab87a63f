"""The gateway's log-batch capacity: two source trees' servers saturated in turn, on SQLite.

Not a test: run it by hand. Starts a gateway (local disk, SQLite) from this tree and one from
`--base` (a checkout of another commit), then for `--rounds` rounds, the servers' order alternating,
posts `--batches` log-batch requests of 1,000 new points each (pre-encoded, as the stock client
sends them: key, value, timestamp, step) from `--connections` aiohttp connections at once, and
prints each server's batches per second and CPU milliseconds per batch (from /proc). The client here
costs little, so the server is what is measured; the stock client's own rate is in
client_versus_mlflow.py.

    .venv/bin/python benchmarks/log_batch_capacity.py --base /tmp/base [--rounds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
API = "/api/2.0/mlflow"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def call(url: str, path: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(url + API + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        result: dict[str, object] = json.load(answer)
        return result


def start(tree: Path, work: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """A gateway from `tree` on a new SQLite store, and a run of its own."""
    port = free_port()
    store = f"sqlite:///{work / 'mlruns.db'}"
    command = [sys.executable, "-m", "gateway", "serve", "--port", str(port),
               "--backend-store-uri", store, "--artifacts-destination", str(work / "art")]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    quiet = subprocess.DEVNULL  # stderr: the access log, a line a request
    server = subprocess.Popen(command, cwd=tree, env=environment, stdout=quiet, stderr=quiet)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/health"):
                break
        except OSError:
            time.sleep(0.1)
    experiment = call(url, "/experiments/create", {"name": "capacity"})["experiment_id"]
    run = call(url, "/runs/create", {"experiment_id": experiment, "start_time": 1})["run"]
    assert isinstance(run, dict)
    return server, url, run["info"]["run_id"]


def bodies(run_id: str, first: int, count: int) -> list[bytes]:
    def point(n: int, i: int) -> dict[str, object]:
        return {
            "key": f"k{n % 4}",
            "value": float(i),
            "timestamp": 1_700_000_000_000 + n * 1000 + i,
            "step": n * 1000 + i,
        }

    return [json.dumps({"run_id": run_id, "metrics": [point(n, i) for i in range(1000)]}).encode()
            for n in range(first, first + count)]  # fmt: skip


async def post_all(url: str, batches: list[bytes], connections: int) -> float:
    """Batches per second, `connections` requests in flight."""
    queue = iter(batches)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:

        async def sender() -> None:
            for body in queue:
                headers = {"Content-Type": "application/json"}
                async with session.post(url + API + "/runs/log-batch", data=body, headers=headers) as answer:
                    if answer.status != 200:
                        raise RuntimeError(f"log-batch answered {answer.status}: {await answer.text()}")

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(connections)))
        return len(batches) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other source tree (a git worktree)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batches", type=int, default=200, help="log-batch requests per round and server")
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    trees = {"base": args.base.resolve(), "this tree": ROOT}
    with tempfile.TemporaryDirectory() as work:
        servers = {name: start(tree, Path(work) / name.replace(" ", "-")) for name, tree in trees.items()}
        rates: dict[str, list[float]] = {name: [] for name in trees}
        cpu: dict[str, list[float]] = {name: [] for name in trees}
        try:
            for round_ in range(args.rounds):
                for name in list(trees) if round_ % 2 == 0 else list(trees)[::-1]:
                    server, url, run_id = servers[name]
                    batches = bodies(run_id, round_ * args.batches, args.batches)
                    before = cpu_seconds(server.pid)
                    rates[name].append(asyncio.run(post_all(url, batches, args.connections)))
                    cpu[name].append((cpu_seconds(server.pid) - before) * 1000 / args.batches)
        finally:
            for server, _, _ in servers.values():
                server.terminate()
                server.wait()
    for name in trees:
        each = ", ".join(f"{rate:.0f}" for rate in rates[name])
        median_cpu = statistics.median(cpu[name])
        rate = statistics.median(rates[name])
        print(f"{name}: {rate:.1f} batches/s (rounds: {each}), {median_cpu:.2f} CPU ms per batch")


if __name__ == "__main__":
    main()
