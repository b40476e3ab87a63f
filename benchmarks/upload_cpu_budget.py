"""Can a gateway that hashes and writes every byte reach 0.8x the discard ceiling on 1 GiB uploads here?

Not a test: `.venv/bin/python benchmarks/upload_cpu_budget.py [--size-mib 1024] [--runs 3] [--dir DIR]`.

A CPU budget, each term measured on this machine in this run (CPU time, so the load matters less):
- the client's CPU per GiB uploading to the do-nothing ceiling server (`ceiling_server.py`), with the
  same aiohttp upload code as `versus_mlflow.py`, and the ceiling's own CPU per GiB (receiving);
- SHA-256 per GiB (hashlib, 1 MiB blocks), the digest every gateway upload computes;
- writing a GiB into the page cache of `--dir` (1 MiB `os.write`s, the gateway's write size) and its
  fsync, as the process's CPU (the kernel's writeback threads come on top and are not counted).
The least CPU per GiB a hashing, writing server can spend is receive + SHA-256 + write. On C cores
the upload rate R (GiB/s) can at most be C / (client + server) CPU-s per GiB; the script prints that
bound beside 0.8x the measured ceiling rate.
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
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.large_file import cpu_seconds
from benchmarks.versus_mlflow import upload

GIB = 1 << 30
BLOCK = 1 << 20


def sha256_cpu_per_gib(data: bytes, size: int) -> float:
    started = time.process_time()
    digest = hashlib.sha256()
    for offset in range(0, size, BLOCK):
        digest.update(data[offset % len(data) : offset % len(data) + BLOCK])
    return (time.process_time() - started) * GIB / size


def write_cpu_per_gib(directory: Path, block: bytes, size: int) -> tuple[float, float]:
    """(CPU-s per GiB of writing into the page cache, CPU-s per GiB of the fsync)."""
    path = directory / f"budget-{os.getpid()}.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        started = time.process_time()
        for _ in range(size // BLOCK):
            os.write(fd, block)
        written = time.process_time()
        os.fsync(fd)
        synced = time.process_time()
    finally:
        os.close(fd)
        path.unlink()
    return (written - started) * GIB / size, (synced - written) * GIB / size


async def ceiling_upload(port: int, pid: int, source: Path, size: int) -> tuple[float, float, float]:
    """(MiB/s, client CPU-s per GiB, ceiling CPU-s per GiB) of one upload of `source`."""
    url = f"http://127.0.0.1:{port}/api/2.0/mlflow-artifacts/artifacts/budget/blob.bin"
    async with aiohttp.ClientSession() as session:
        server0, client0, wall0 = cpu_seconds(pid), time.process_time(), time.perf_counter()
        await upload(session, url, source)
        wall, client, server = time.perf_counter() - wall0, time.process_time() - client0, cpu_seconds(pid) - server0
    return size / wall / (1 << 20), client * GIB / size, server * GIB / size


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "ceiling_server.py"), "--root", scratch, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.5)
            ceiling = [asyncio.run(ceiling_upload(port, server.pid, source, size)) for _ in range(args.runs)]
        finally:
            server.terminate()
            server.wait(10)
        sha = [sha256_cpu_per_gib(block * 16, size) for _ in range(args.runs)]
        writes = [write_cpu_per_gib(Path(scratch), block, size) for _ in range(args.runs)]
    rate = statistics.median(r[0] for r in ceiling)
    client = statistics.median(r[1] for r in ceiling)
    receive = statistics.median(r[2] for r in ceiling)
    sha256 = statistics.median(sha)
    write = statistics.median(w[0] for w in writes)
    fsync = statistics.median(w[1] for w in writes)
    least = receive + sha256 + write + fsync
    bound = cores / (client + least) * 1024
    print(f"ceiling upload: {rate:.0f} MiB/s; client {client:.2f} CPU-s/GiB, ceiling server {receive:.2f} CPU-s/GiB")
    print(f"SHA-256 {sha256:.2f}, page-cache write {write:.2f}, fsync {fsync:.2f} CPU-s/GiB (medians of {args.runs})")
    print(f"least CPU of a hashing, writing server: {least:.2f} CPU-s/GiB; with the client: {client + least:.2f}")
    print(f"on {cores} cores at most {bound:.0f} MiB/s = {bound / rate:.2f}x the ceiling", end=" ")
    print(f"(the target, 0.8x, is {0.8 * rate:.0f} MiB/s)")


if __name__ == "__main__":
    main()
