"""The fastest durable small-file writes this disk allows, with no HTTP, no hashing, no Python server.

Not a test: `.venv/bin/python benchmarks/durable_write_floor.py [--dir DIR]`. Each file is written
the way the gateway stores an upload with `--fsync` (the default): a temporary file written and
fsynced, renamed into place, the directory fsynced. Threads write files concurrently (the gateway's
uploads run in its thread pool the same way). The files/s printed bounds what any server that
promises durability could answer for small uploads on this disk; `--no-fsync` shows the same loop
with only the page cache.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import tempfile
import time
from pathlib import Path


def write_one(root: Path, index: int, data: bytes, fsync: bool) -> None:
    staged, final = root / f".staged-{index}", root / f"file-{index}"
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(staged, final)
    if fsync:
        directory = os.open(root, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def files_per_second(root: Path, files: int, size: int, threads: int, fsync: bool) -> float:
    data = os.urandom(size)
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda index: write_one(root, index, data, fsync), range(files)))
    elapsed = time.perf_counter() - started
    for index in range(files):
        (root / f"file-{index}").unlink()
    return files / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, help="a directory on the disk to measure (default: a temp dir here)")
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir or Path.cwd()) as scratch:
        root = Path(scratch)
        for fsync in (True, False):
            for threads in (6, 32):
                rates = sorted(files_per_second(root, args.files, args.size, threads, fsync) for _ in range(args.runs))
                label = "fsync   " if fsync else "no fsync"
                print(
                    f"{label} threads={threads:2d}: median {rates[len(rates) // 2]:7,.0f} files/s  (runs: "
                    + ", ".join(f"{rate:,.0f}" for rate in rates)
                    + ")"
                )


if __name__ == "__main__":
    main()
