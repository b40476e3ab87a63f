"""Can a gateway that hashes and writes every byte reach 0.8x the discard ceiling on 1 GiB uploads here?

Not a test: `.venv/bin/python benchmarks/upload_cpu_budget.py [--size-mib 1024] [--runs 3] [--dir DIR]`.

A CPU budget, each term measured on this machine in this run, as the CPU time of the whole machine
(/proc/stat: user, system, irq and softirq of every core), so that the kernel's share counts too:
- an upload to the do-nothing ceiling server (`ceiling_server.py`) with the same aiohttp upload code
  as `versus_mlflow.py`: the client's and the ceiling's CPU and the loopback TCP between them (each
  process's own CPU is printed as well);
- SHA-256 per GiB (hashlib, 1 MiB blocks), the digest every gateway upload computes;
- writing a GiB into a file of `--dir` (1 MiB `os.write`s) the way a durable gateway upload does
  (early writeback every 8 MiB, an fsync at the end), including the kernel's writeback threads.
The least machine CPU per GiB of a client uploading to a server that receives, hashes and writes
every byte is the sum. On C cores the upload takes at least sum / C seconds per GiB; the script
prints that bound as a ratio to the measured ceiling rate. Run it on a quiet machine: anything
else running counts too.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.large_file import cpu_seconds
from benchmarks.versus_mlflow import process, upload
from repositories.writeback import WRITEBACK_WINDOW_BYTES, start_writeback

GIB = 1 << 30
BLOCK = 1 << 20


def sha256_cpu_per_gib(data: bytes, size: int) -> float:
    started = time.process_time()
    digest = hashlib.sha256()
    for offset in range(0, size, BLOCK):
        digest.update(data[offset % len(data) : offset % len(data) + BLOCK])
    return (time.process_time() - started) * GIB / size


def machine_busy() -> float:
    """CPU-seconds every core of the machine has spent busy since boot (not idle, iowait or steal)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def write_cpu_per_gib(directory: Path, block: bytes, size: int) -> tuple[float, float]:
    """(this process's, the machine's) CPU-s per GiB of a durable write: early writeback, fsync."""
    path = directory / f"budget-{os.getpid()}.bin"
    os.sync()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        own, machine = time.process_time(), machine_busy()
        for index in range(1, size // BLOCK + 1):
            os.write(fd, block)
            if index * BLOCK % WRITEBACK_WINDOW_BYTES == 0:
                start_writeback(fd, index * BLOCK - WRITEBACK_WINDOW_BYTES, WRITEBACK_WINDOW_BYTES)
        os.fsync(fd)
        own, machine = time.process_time() - own, machine_busy() - machine
    finally:
        os.close(fd)
        path.unlink()
    return own * GIB / size, machine * GIB / size


async def ceiling_upload(url: str, pid: int, source: Path, size: int) -> tuple[float, float, float, float]:
    """(MiB/s, client, ceiling, machine CPU-s per GiB) of one upload of `source`."""
    async with aiohttp.ClientSession() as session:
        server0, client0, machine0 = cpu_seconds(pid), time.process_time(), machine_busy()
        wall0 = time.perf_counter()
        await upload(session, f"{url}/api/2.0/mlflow-artifacts/artifacts/budget/blob.bin", source)
        wall = time.perf_counter() - wall0
        client, server, machine = time.process_time() - client0, cpu_seconds(pid) - server0, machine_busy() - machine0
    return size / wall / (1 << 20), client * GIB / size, server * GIB / size, machine * GIB / size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the write test writes (this folder)")
    args = parser.parse_args()
    size = args.size_mib << 20
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        source = Path(scratch) / "source.bin"
        with open(source, "wb") as out:
            for _ in range(size // BLOCK):
                out.write(os.urandom(BLOCK))
        block = os.urandom(BLOCK)
        ceiling_server = [sys.executable, str(Path(__file__).parent / "ceiling_server.py"), "--root", scratch]
        with process("ceiling", ceiling_server, Path(scratch), {}) as (url, pid):
            ceiling = [asyncio.run(ceiling_upload(url, pid, source, size)) for _ in range(args.runs)]
        sha = [sha256_cpu_per_gib(block * 16, size) for _ in range(args.runs)]
        writes = [write_cpu_per_gib(Path(scratch), block, size) for _ in range(args.runs)]
    rate = statistics.median(r[0] for r in ceiling)
    client = statistics.median(r[1] for r in ceiling)
    receive = statistics.median(r[2] for r in ceiling)
    transfer = statistics.median(r[3] for r in ceiling)
    sha256 = statistics.median(sha)
    write_own = statistics.median(w[0] for w in writes)
    write = statistics.median(w[1] for w in writes)
    least = transfer + sha256 + write
    bound = cores / least * 1024
    print(
        f"ceiling upload: {rate:.0f} MiB/s; machine {transfer:.2f} CPU-s/GiB "
        f"(client {client:.2f}, ceiling server {receive:.2f}, the rest kernel and loopback)"
    )
    print(
        f"SHA-256 {sha256:.2f}; durable write {write:.2f} CPU-s/GiB of the machine ({write_own:.2f} in the writer) "
        f"(medians of {args.runs})"
    )
    print(f"least machine CPU of a client and a hashing, writing server: {least:.2f} CPU-s/GiB")
    print(f"on {cores} cores at most {bound:.0f} MiB/s = {bound / rate:.2f}x the ceiling", end=" ")
    print(f"(the target, 0.8x, is {0.8 * rate:.0f} MiB/s)")


if __name__ == "__main__":
    main()
