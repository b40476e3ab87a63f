"""What one small upload (or, with `--method GET`, download) costs the gateway: CPU microseconds and
syscalls per request, load-independent.

Not a test: run it by hand. Starts a gateway (`--artifacts-only`, one worker) from each source tree
given (`--tree`, repeatable; PYTHONPATH puts that tree first), sends `--files` PUTs of `--kib` KiB
with `--concurrency` in flight from an aiohttp client in this process, and reads the gateway process
tree's CPU time from /proc around the batch. With `--strace`, a second batch runs under
`strace -f -c` attached to every thread of the serving process, and the syscalls per request are printed
by name. Trees alternate (A B B A A B ...) for `--rounds`, so machine load hits both alike; wall-clock
figures (files/s, p50/p99) are printed too but are only meaningful on a quiet machine. With
`--method GET` the files are uploaded first, unmeasured, and the GETs of them are measured (every
body checked against what was uploaded).

    .venv/bin/python benchmarks/small_put_cost.py --tree /tmp/perf-base --tree . --rounds 3 --strace
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.large_file import cpu_seconds
from tests.gateway_process import ARTIFACTS, run_gateway


def serving_pid(pid: int) -> int:
    """The process that answers requests: the worker child if there is one, else `pid` itself."""
    children = psutil.Process(pid).children(recursive=True)
    return children[-1].pid if children else pid


async def request_batch(
    method: str, port: int, prefix: str, files: int, size: int, concurrency: int
) -> tuple[float, list[float]]:
    """PUT `files` random files of `size` bytes under `prefix`, or GET them back (`method`), with
    `concurrency` in flight; the batch's seconds and each request's latency."""
    body = os.urandom(size)
    latencies: list[float] = []
    queue = iter(range(files))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            for index in queue:
                url = f"http://127.0.0.1:{port}{ARTIFACTS}/{prefix}/d{index % 8}/f{index}.bin"
                started = time.perf_counter()
                async with session.request(method, url, data=body if method == "PUT" else None) as response:
                    received = await response.read()
                    if response.status != 200 or (method == "GET" and len(received) != size):
                        raise SystemExit(f"{method} {url}: {response.status}, {len(received)} bytes")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


def strace_counts(pid: int, run: Callable[[], object]) -> dict[str, int]:
    """Syscalls by name of every thread of `pid` (and threads it starts) while `run` runs."""
    args = ["strace", "-f", "-c", "-U", "name,calls"]
    for thread in psutil.Process(pid).threads():
        args += ["-p", str(thread.id)]
    with tempfile.NamedTemporaryFile(suffix=".strace") as out:
        tracer = subprocess.Popen([*args, "-o", out.name], stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # let strace attach
        try:
            run()
        finally:
            tracer.terminate()
            tracer.wait()
        counts: dict[str, int] = {}
        for line in Path(out.name).read_text().splitlines():
            match = re.match(r"^\s*(\w+)\s+(\d+)\s*$", line)
            if match and match.group(1) not in ("syscall", "total"):
                counts[match.group(1)] = int(match.group(2))
    return counts


@dataclass
class Result:
    cpu_us: float
    files_s: float
    p50_ms: float
    p99_ms: float
    syscalls: dict[str, float] = field(default_factory=dict)


def measure(tree: Path, args: argparse.Namespace, round_: int, scratch: Path) -> Result:
    """One round of `tree`'s gateway, storing under `scratch` (a new directory, kept until the end)."""
    env = {"PYTHONPATH": str(tree.resolve())}
    size = args.kib * 1024
    with run_gateway(scratch / "gw", "--artifacts-only", *args.gateway_arg, env=env) as gateway:
        pid = gateway.proc.pid
        asyncio.run(request_batch("PUT", gateway.port, "warm", 200, size, args.concurrency))
        if args.method == "GET":  # the files to read, and a warm-up of reads
            asyncio.run(request_batch("PUT", gateway.port, "timed", args.files, size, args.concurrency))
            asyncio.run(request_batch("GET", gateway.port, "warm", 200, size, args.concurrency))
        before = cpu_seconds(pid)
        seconds, latencies = asyncio.run(
            request_batch(args.method, gateway.port, "timed", args.files, size, args.concurrency)
        )
        cpu = cpu_seconds(pid) - before
        result = Result(
            cpu_us=cpu / args.files * 1e6,
            files_s=args.files / seconds,
            p50_ms=statistics.median(latencies) * 1000,
            p99_ms=statistics.quantiles(latencies, n=100)[98] * 1000,
        )
        if args.strace:
            counts = strace_counts(
                serving_pid(pid),
                lambda: asyncio.run(
                    # new files for PUTs (overwrites commit differently); the same files for GETs
                    request_batch(
                        args.method,
                        gateway.port,
                        "traced" if args.method == "PUT" else "timed",
                        args.files,
                        size,
                        args.concurrency,
                    )
                ),
            )
            result.syscalls = {name: n / args.files for name, n in counts.items()}
    print(
        f"round {round_} {tree}: {result.cpu_us:.0f} CPU-us/request, {result.files_s:.0f} files/s, "
        f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms",
        file=sys.stderr,
    )
    return result


def summarise(tree: str, runs: list[Result], with_syscalls: bool) -> None:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    cpu = ", ".join(f"{run.cpu_us:.0f}" for run in runs)
    print(
        f"{tree}: median of {len(runs)}: {med([r.cpu_us for r in runs]):.0f} CPU-us/request (runs {cpu}), "
        f"{med([r.files_s for r in runs]):.0f} files/s, p50 {med([r.p50_ms for r in runs]):.1f} ms, "
        f"p99 {med([r.p99_ms for r in runs]):.1f} ms"
    )
    if with_syscalls:
        names = sorted({name for run in runs for name in run.syscalls})
        per = {name: med([run.syscalls.get(name, 0.0) for run in runs]) for name in names}
        top = ", ".join(f"{name} {n:.2f}" for name, n in sorted(per.items(), key=lambda kv: -kv[1]) if n >= 0.05)
        print(f"  syscalls per request (median): {sum(per.values()):.1f}: {top}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, action="append", required=True, help="source tree (repeatable)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--kib", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--method", choices=("PUT", "GET"), default="PUT", help="what is measured")
    parser.add_argument("--strace", action="store_true", help="also count syscalls per request (one more batch)")
    parser.add_argument("--gateway-arg", action="append", default=[], help="extra flag for serve (repeatable)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, list[Result]] = {str(tree): [] for tree in args.tree}
    # Every round's files stay until the end: on ext4 without a journal (this machine's disk), each
    # new inode is checked against those deleted in the last minutes, so a round that followed
    # the deletion of the one before would pay for it (benchmarks/RESULTS.md, deleted inodes).
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        for round_ in range(args.rounds):
            # reversed every other round: a harness that always runs A before B favours one slot
            for slot, tree in enumerate(args.tree if round_ % 2 == 0 else args.tree[::-1]):
                results[str(tree)].append(measure(tree, args, round_, Path(scratch) / f"round{round_}-{slot}"))
    for tree, runs in results.items():
        summarise(tree, runs, args.strace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
