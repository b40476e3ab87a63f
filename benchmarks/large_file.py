"""Upload and download one large file through a freshly started gateway; report speed and memory.

Not a test: run it by hand (`.venv/bin/python benchmarks/large_file.py --size-mib 1024`). Every
byte is verified by SHA-256 on both legs; a mismatch exits non-zero. The server's peak RSS is
sampled over its whole process tree, and its CPU seconds are read from /proc via psutil.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.gateway_process import ARTIFACTS, run_gateway

BLOCK = 1 << 20


@dataclass
class Leg:
    seconds: float
    ttfb: float
    server_cpu: float


class PeakRss:
    """Samples the RSS of a process and its children every 20 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree_rss(self) -> int:
        total = 0
        for proc in [self._process, *self._process.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            time.sleep(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def cpu_seconds(pid: int) -> float:
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def cpu_seconds_once_idle(pid: int, *, window: float = 0.25, timeout: float = 60.0) -> float:
    """`cpu_seconds` once the process tree has stopped working (under 2 % of a core for `window` s).

    Counts what a server does after answering: the gateway hashes a large upload after its 200.
    """
    deadline = time.monotonic() + timeout
    last = cpu_seconds(pid)
    while True:
        time.sleep(window)
        now = cpu_seconds(pid)
        if now - last < 0.02 * window or time.monotonic() > deadline:
            return now
        last = now


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows (some kernels list no model name)."""
    with contextlib.suppress(OSError, StopIteration):
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    return platform.processor() or platform.machine()


def make_source(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(8 * BLOCK, left))
            digest.update(block)
            out.write(block)
            left -= len(block)
    return digest.hexdigest()


def upload(port: int, target: str, source: Path, pid: int) -> tuple[Leg, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600, blocksize=BLOCK)
    cpu0 = cpu_seconds(pid)
    started = time.perf_counter()
    with open(source, "rb") as body:
        connection.request("PUT", target, body=body, headers={"Content-Length": str(source.stat().st_size)})
        response = connection.getresponse()
        answer = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise SystemExit(f"upload failed: {response.status} {answer[:300]!r}")
    connection.close()
    return Leg(elapsed, elapsed, cpu_seconds(pid) - cpu0), json.loads(answer)["sha256"]


def download(port: int, target: str, pid: int) -> tuple[Leg, str, int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    cpu0 = cpu_seconds(pid)
    started = time.perf_counter()
    connection.request("GET", target)
    response = connection.getresponse()
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    digest = hashlib.sha256()
    received = response.readinto(buffer)
    ttfb = time.perf_counter() - started
    total = 0
    while received:
        digest.update(view[:received])
        total += received
        received = response.readinto(buffer)
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise SystemExit(f"download failed: {response.status}")
    connection.close()
    return Leg(elapsed, ttfb, cpu_seconds(pid) - cpu0), digest.hexdigest(), total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="where the file and destination live")
    parser.add_argument("--gateway-arg", action="append", default=[], help="extra flag for serve (repeatable)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        work = Path(scratch)
        size = args.size_mib * BLOCK
        source = work / "source.bin"
        print(f"creating a {args.size_mib} MiB source file ...", file=sys.stderr)
        expected = make_source(source, size)
        ups, downs = [], []
        with run_gateway(work / "gateway", *args.gateway_arg) as gateway:
            pid = gateway.proc.pid
            idle_rss = psutil.Process(pid).memory_info().rss
            sampler = PeakRss(pid)
            for run in range(args.runs):
                target = f"{ARTIFACTS}/bench/run{run}/model.bin"
                up, stored = upload(gateway.port, target, source, pid)
                if stored != expected:
                    raise SystemExit(f"SHA-256 mismatch after upload: {stored} != {expected}")
                down, got, total = download(gateway.port, target, pid)
                if got != expected or total != size:
                    raise SystemExit(f"SHA-256 mismatch after download: {got} ({total} bytes)")
                ups.append(up)
                downs.append(down)
                print(
                    f"run {run}: up {size / BLOCK / up.seconds:.0f} MiB/s, "
                    f"down {size / BLOCK / down.seconds:.0f} MiB/s",
                    file=sys.stderr,
                )
                (gateway.destination / f"bench/run{run}/model.bin").unlink()
            peak = sampler.stop()

    gib = size / (1 << 30)

    def median(values: list[float]) -> float:
        return statistics.median(values)

    flags = " ".join(args.gateway_arg) or "defaults"
    print(f"| {args.size_mib} MiB, {args.runs} runs, gateway {flags} | median |")
    print("| --- | --- |")
    print(f"| upload MiB/s | {median([size / BLOCK / leg.seconds for leg in ups]):.0f} |")
    print(f"| download MiB/s | {median([size / BLOCK / leg.seconds for leg in downs]):.0f} |")
    print(f"| download time to first byte, ms | {median([leg.ttfb * 1000 for leg in downs]):.1f} |")
    print(f"| server CPU-s per GiB, upload | {median([leg.server_cpu / gib for leg in ups]):.2f} |")
    print(f"| server CPU-s per GiB, download | {median([leg.server_cpu / gib for leg in downs]):.2f} |")
    print(f"| server RSS idle / peak, MiB | {idle_rss / BLOCK:.0f} / {peak / BLOCK:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
