"""What a large upload costs the gateway, source tree against source tree, beside the discard ceiling.

Not a test: run it by hand. Each round starts the ceiling (`ceiling_server.py`) and a gateway
(`--artifacts-only`, one worker, local disk) from each source tree given (`--tree`, repeatable;
PYTHONPATH puts that tree first), uploads one `--size-mib` file to each with the aiohttp client of
`versus_mlflow.py`, and reads each server's process-tree CPU time from /proc around the upload. The
order of the servers rotates and reverses from round to round, and the page cache is synced
before each upload (a harness that always runs A before B measured the second slot 1.8x slower for
identical trees here), and each round reports the gateway's MiB/s as a
ratio to the ceiling measured in that round. `--profile DIR` records py-spy's collapsed stacks of
each gateway upload (one more upload per tree, not timed).

    .venv/bin/python benchmarks/large_put_cost.py --tree /tmp/base --tree . --rounds 4
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.large_file import cpu_seconds, cpu_seconds_once_idle, make_source
from benchmarks.small_put_cost import serving_pid
from benchmarks.versus_mlflow import process, upload
from tests.gateway_process import ARTIFACTS, run_gateway

GIB = 1 << 30


@dataclass
class Leg:
    mib_s: float
    cpu_per_gib: float


CEILING = [sys.executable, str(Path(__file__).resolve().parent / "ceiling_server.py"), "--root"]


def timed_upload(url: str, pid: int, source: Path, name: str) -> Leg:
    async def send() -> None:
        timeout = aiohttp.ClientTimeout(total=None)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await upload(session, f"{url}{ARTIFACTS}/{name}", source)

    size = source.stat().st_size
    os.sync()  # the previous upload's bytes reach the disk now, not during this one
    time.sleep(1.0)
    before = cpu_seconds(pid)
    started = time.perf_counter()
    asyncio.run(send())
    seconds = time.perf_counter() - started
    return Leg(mib_s=size / seconds / (1 << 20), cpu_per_gib=(cpu_seconds_once_idle(pid) - before) * GIB / size)


def profiled_upload(url: str, pid: int, source: Path, name: str, out: Path) -> None:
    command = ["py-spy", "record", "--threads", "--idle", "-r", "250", "-f", "raw", "-o", str(out)]
    recorder = subprocess.Popen(
        [*command, "-p", str(serving_pid(pid))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    timed_upload(url, pid, source, name)
    recorder.send_signal(2)
    recorder.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, action="append", required=True, help="source tree (repeatable)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--workdir", type=Path, default=None, help="where the file and destinations live")
    parser.add_argument("--gateway-arg", action="append", default=[], help="extra flag for serve (repeatable)")
    parser.add_argument("--profile", type=Path, default=None, help="write py-spy collapsed stacks per tree here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        work = Path(scratch)
        source = work / "source.bin"
        expected = make_source(source, args.size_mib << 20)
        names = ["ceiling", *(str(tree) for tree in args.tree)]
        legs: dict[str, list[Leg]] = {name: [] for name in names}
        ratios: dict[str, list[float]] = {str(tree): [] for tree in args.tree}
        for round_ in range(args.rounds):
            shift = round_ // 2 % len(names)  # every server takes every position in turn
            order = names[shift:] + names[:shift]
            order = order if round_ % 2 == 0 else order[::-1]
            measured: dict[str, Leg] = {}
            for name in order:
                if name == "ceiling":
                    with process("ceiling", [*CEILING, str(work)], work, {}) as (url, pid):
                        measured[name] = timed_upload(url, pid, source, f"r{round_}/up.bin")
                else:
                    env = {"PYTHONPATH": str(Path(name).resolve())}
                    with run_gateway(work / f"gw{round_}", "--artifacts-only", *args.gateway_arg, env=env) as gw:
                        measured[name] = timed_upload(gw.url, gw.proc.pid, source, f"r{round_}/up.bin")
                        stored = gw.destination / f"r{round_}" / "up.bin"
                        verify(expected, stored)
                        if args.profile is not None and round_ == 0:
                            args.profile.mkdir(parents=True, exist_ok=True)
                            label = Path(name).resolve().name
                            profiled_upload(gw.url, gw.proc.pid, source, "profiled.bin", args.profile / f"{label}.txt")
                leg = measured[name]
                legs[name].append(leg)
                print(f"round {round_} {name}: {leg.mib_s:.0f} MiB/s, {leg.cpu_per_gib:.2f} CPU-s/GiB", file=sys.stderr)
            for tree in ratios:
                ratios[tree].append(measured[tree].mib_s / measured["ceiling"].mib_s)
    for name, runs in legs.items():
        mib_s = statistics.median(leg.mib_s for leg in runs)
        cpu = statistics.median(leg.cpu_per_gib for leg in runs)
        line = f"{name}: median of {len(runs)}: {mib_s:.0f} MiB/s, {cpu:.2f} CPU-s/GiB"
        if name in ratios:
            each = ", ".join(f"{r:.2f}" for r in ratios[name])
            line += f", {statistics.median(ratios[name]):.2f}x the ceiling (rounds {each})"
        print(line)
    return 0


def verify(expected: str, stored: Path) -> None:
    digest = hashlib.sha256()
    with open(stored, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise SystemExit(f"MISMATCH: {stored} differs from what was sent")
    stored.unlink()


if __name__ == "__main__":
    sys.exit(main())
