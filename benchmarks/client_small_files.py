"""The stock client's `log_artifacts` of many small files, one PUT at a time, and the disk's floor for it.

Not a test: run it by hand (about 4 minutes with the defaults on a 2-core machine). MLflow's client
(`HttpArtifactRepository.log_artifacts`, what `MlflowClient.log_artifacts` calls) uploads a folder one
file after the other, so each file costs a whole request: the client's own work, the server's, and, on
the gateway with `--fsync` (the default), two disk cache flushes (the file before it gets its name, then
its folder). This script times that call for `--files` files of `--kib` KiB in `--folders` folders
against:

  * the gateway from each `--tree` (PYTHONPATH puts that tree first; SQLite tracking store, proxied
    artifacts on local disk, otherwise defaults, as in `client_versus_mlflow.py`), and the first tree's
    again with `--no-fsync`;
  * stock `mlflow server` (SQLite, `--artifacts-destination` on local disk, `--workers 4`);
  * `ceiling_server.py`, which discards each body: what the client alone costs per file;

in `--rounds` rounds (after one unmeasured), the order reversed every round, each round into a new
run's folder. Per round it also times `log_artifact` of one small file into each of `--new-runs` new
runs (the first artifact of a run makes its folders), and the disk's floor: `--floor-files` files
written one at a time the way the gateway stores a small upload with `--fsync` (an O_TMPFILE written
and fsynced, linked into place, its folder fsynced), each step timed. Prints medians, the per-round
ratio against MLflow, the gateway's own median time per PUT (its request lines' `duration_ms`: the
rest is the client and the loopback), and the load average; the stored files are checked against
their sources.

    .venv/bin/python benchmarks/client_small_files.py --tree /tmp/base --tree . --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.versus_mlflow import mlflow_server_command, process, settle
from tests.gateway_process import ARTIFACTS, run_gateway

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    name: str
    url: str
    destination: Path | None  # where it stores (None: the ceiling keeps nothing)
    log_lines: Callable[[], list[dict[str, object]]] | None = None  # a gateway's log: its own time per request
    seconds: list[float] = field(default_factory=list)
    first_file_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)

    def median_request_ms(self, run: str) -> float | None:
        """The gateway's own median time (`duration_ms` of its request lines) for the PUTs of `run`."""
        if self.log_lines is None:
            return None
        marker = f"/0/{run}/artifacts/folder/"
        durations = [
            float(str(line["duration_ms"]))
            for line in self.log_lines()
            if line.get("msg") == "request" and marker in str(line.get("path", ""))
        ]
        return statistics.median(durations) if durations else None


def make_folder(root: Path, files: int, folders: int, size: int) -> dict[str, str]:
    """`files` random files spread over `folders` folders under `root`; their SHA-256 by relative path."""
    digests = {}
    per_folder = max(1, files // folders)
    for index in range(files):
        name = f"f{index // per_folder:02d}/{index:05d}.bin"
        blob = os.urandom(size)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(blob)
        digests[name] = hashlib.sha256(blob).hexdigest()
    return digests


def repository(server: Server, run: str) -> Any:
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

    return HttpArtifactRepository(f"{server.url}{ARTIFACTS}/0/{run}/artifacts")


def upload_folder(server: Server, run: str, folder: Path) -> None:
    repository(server, run).log_artifacts(str(folder), "folder")


def upload_file(server: Server, run: str, file: Path) -> None:
    repository(server, run).log_artifact(str(file))


def timed(call: Callable[..., None], *args: Any) -> float:
    settle()
    started = time.perf_counter()
    call(*args)
    return time.perf_counter() - started


def check_stored(server: Server, run: str, digests: dict[str, str]) -> None:
    if server.destination is None:
        return
    for name, digest in digests.items():
        stored = server.destination / "0" / run / "artifacts" / "folder" / name
        if hashlib.sha256(stored.read_bytes()).hexdigest() != digest:
            raise SystemExit(f"{server.name}: {stored} does not hold what was uploaded")


@dataclass
class Floor:
    """Milliseconds per file of each step of a durable small write, one file at a time."""

    file_fsync: list[float] = field(default_factory=list)
    dir_fsync: list[float] = field(default_factory=list)
    rest: list[float] = field(default_factory=list)


def durable_floor(directory: Path, files: int, size: int, floor: Floor) -> None:
    """Write `files` files into `directory` as the gateway does with `--fsync`, one at a time."""
    directory.mkdir(parents=True)
    data = os.urandom(size)
    folder = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    file_fsync = dir_fsync = total = 0.0
    try:
        for index in range(files):
            started = time.perf_counter()
            fd = os.open(directory, os.O_RDWR | os.O_TMPFILE, 0o644)
            try:
                os.write(fd, data)
                before = time.perf_counter()
                os.fsync(fd)
                file_fsync += time.perf_counter() - before
                os.link(f"/proc/self/fd/{fd}", f"f{index}", dst_dir_fd=folder, follow_symlinks=True)
            finally:
                os.close(fd)
            before = time.perf_counter()
            os.fsync(folder)
            dir_fsync += time.perf_counter() - before
            total += time.perf_counter() - started
    finally:
        os.close(folder)
    floor.file_fsync.append(file_fsync / files * 1000)
    floor.dir_fsync.append(dir_fsync / files * 1000)
    floor.rest.append((total - file_fsync - dir_fsync) / files * 1000)


@contextlib.contextmanager
def start_servers(work: Path, args: argparse.Namespace) -> Iterator[list[Server]]:
    with contextlib.ExitStack() as stack:
        servers = []
        variants = [(tree, "--fsync") for tree in args.tree] + [(args.tree[0], "--no-fsync")]
        for index, (tree, fsync) in enumerate(variants):
            name = f"gateway {tree}{' --no-fsync' if fsync == '--no-fsync' else ''}"
            where = work / f"gateway{index}"
            gateway = stack.enter_context(
                run_gateway(
                    where,
                    "--backend-store-uri",
                    f"sqlite:///{where / 'gateway.db'}",
                    fsync,
                    env={"PYTHONPATH": str(Path(tree).resolve())},
                    destination=where / "artifacts",
                )
            )
            servers.append(Server(name, gateway.url, where / "artifacts", gateway.log_lines))
        (work / "mlflow").mkdir()
        command = mlflow_server_command(
            work / "mlflow" / "artifacts", store=f"sqlite:///{work / 'mlflow' / 'mlflow.db'}"
        )
        url, _ = stack.enter_context(process("mlflow", command, work / "mlflow", {}))
        servers.append(Server("mlflow", url, work / "mlflow" / "artifacts"))
        (work / "ceiling").mkdir()
        command = [sys.executable, str(ROOT / "benchmarks" / "ceiling_server.py"), "--root", str(work / "ceiling")]
        url, _ = stack.enter_context(process("ceiling", command, work / "ceiling", {}))
        servers.append(Server("ceiling", url, None))
        yield servers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", action="append", help="source tree of a gateway (repeatable; default: this one)")
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--folders", type=int, default=20)
    parser.add_argument("--kib", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--new-runs", type=int, default=10, help="log_artifact of one file into this many new runs")
    parser.add_argument("--floor-files", type=int, default=300)
    parser.add_argument("--workdir", type=Path, help="scratch space on the disk to measure (default: system temp)")
    args = parser.parse_args()
    args.tree = args.tree or [str(ROOT)]
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        work = Path(scratch)
        digests = make_folder(work / "folder", args.files, args.folders, args.kib * 1024)
        single = work / "single" / "config.json"
        single.parent.mkdir()
        single.write_bytes(os.urandom(args.kib * 1024))
        floor = Floor()
        loads = []
        with start_servers(work, args) as servers:
            for round_ in range(args.rounds + 1):
                order = servers if round_ % 2 == 0 else servers[::-1]
                for server in order:
                    run = f"round{round_}"
                    seconds = timed(upload_folder, server, run, work / "folder")
                    check_stored(server, run, digests)
                    firsts = [timed(upload_file, server, f"{run}-new{i}", single) for i in range(args.new_runs)]
                    print(
                        f"round {round_} {server.name}: {seconds:.2f} s ({seconds / args.files * 1000:.2f} ms/file), "
                        f"first file of a new run {statistics.median(firsts) * 1000:.1f} ms, "
                        f"load {os.getloadavg()[0]:.1f}",
                        file=sys.stderr,
                        flush=True,
                    )
                    if round_ > 0:  # the first round pays for imports and first-time setup
                        server.seconds.append(seconds)
                        server.first_file_ms.append(statistics.median(firsts) * 1000)
                        own = server.median_request_ms(run)
                        if own is not None:
                            server.server_ms.append(own)
                if round_ > 0:
                    settle()
                    durable_floor(work / f"floor{round_}", args.floor_files, args.kib * 1024, floor)
                    loads.append(os.getloadavg()[0])
        report(servers, floor, loads, args)


def report(servers: list[Server], floor: Floor, loads: list[float], args: argparse.Namespace) -> None:
    mlflow = next(server for server in servers if server.name == "mlflow")
    print(f"\n`log_artifacts` of {args.files:,} x {args.kib} KiB files in {args.folders} folders, one PUT at a time;")
    print(f"medians of {args.rounds} alternated rounds, load average {min(loads):.1f}-{max(loads):.1f}\n")
    columns = ["server", "seconds", "ms per file", "vs MLflow (per round)", "first file of a new run, ms"]
    print("| " + " | ".join([*columns, "server's own ms per PUT"]) + " |")
    print("| --- | --- | --- | --- | --- | --- |")
    for server in servers:
        ratios = [theirs / ours for ours, theirs in zip(server.seconds, mlflow.seconds, strict=True)]
        median = statistics.median(server.seconds)
        print(
            f"| {server.name} | {median:.2f} | {median / args.files * 1000:.2f} | "
            f"{statistics.median(ratios):.2f}x ({', '.join(f'{r:.2f}' for r in ratios)}) | "
            f"{statistics.median(server.first_file_ms):.1f} | "
            f"{f'{statistics.median(server.server_ms):.2f}' if server.server_ms else ''} |"
        )
    per_round = zip(floor.file_fsync, floor.dir_fsync, floor.rest, strict=True)
    parts = [statistics.median(floor.file_fsync), statistics.median(floor.dir_fsync), statistics.median(floor.rest)]
    print(
        f"\nDurable-write floor, one file at a time ({args.floor_files} files a round): {sum(parts):.2f} ms per file "
        f"(file fsync {parts[0]:.2f}, folder fsync {parts[1]:.2f}, the rest {parts[2]:.2f}; per round "
        f"{', '.join(f'{sum(steps):.2f}' for steps in per_round)})"
    )
    client = statistics.median(servers[-1].seconds) / args.files * 1000
    theirs = statistics.median(mlflow.seconds) / args.files * 1000
    print(
        f"The client alone (the ceiling): {client:.2f} ms per file; MLflow's server adds {theirs - client:.2f} ms "
        f"per file on top, the gateway's durable floor alone is {sum(parts[:2]):.2f} ms."
    )


if __name__ == "__main__":
    main()
