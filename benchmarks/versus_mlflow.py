"""The gateway next to stock `mlflow server --artifacts-only` and a do-nothing ceiling, in one run.

Not a test. Run it with `./dev bench` (it installs the pinned test dependencies, MLflow included)
or `.venv/bin/python benchmarks/versus_mlflow.py --help`. About 15 minutes with the defaults on a
2-core machine; `--quick` takes about 3.

What it does, for each backend (local disk, then the S3 server of the test suite):
  * starts the gateway (one worker, `--artifacts-only`, otherwise defaults: like for like),
    `mlflow server --artifacts-only` (uvicorn, 4 workers,
    as MLflow ships it) and, on local disk, `benchmarks/ceiling_server.py` (aiohttp that discards
    uploads and sends downloads with sendfile: what any aiohttp server could at best do);
  * per run, per workload, every server in turn, the order rotating between runs (interleaved A/B):
    one large upload and download (MiB/s, time to first byte, server CPU-s per GiB), many small
    uploads and downloads with a fixed number in flight (files/s, p50/p99 latency), and several
    concurrent large uploads (aggregate MiB/s);
  * verifies every byte: each download by SHA-256 and length while it streams, each stored upload
    by reading it back from the backend itself; any mismatch exits non-zero;
  * samples each server's whole process tree for peak RSS (every 20 ms) and reads its CPU time;
  * run as root, writes back and drops the page cache before every server's small-file leg (files
    created soon after others were deleted cost more on some file systems; see `forget_deleted_inodes`).
Then, with `--flat-gib N`, the gateway alone moves a 1 GiB and an N GiB object on local disk, S3
and Azure (Azurite), to show its peak RSS does not grow with the object.

The same Python aiohttp client drives every server on loopback, sharing the cores with it. The
report (markdown with medians and ratios, raw JSON, PNG chart) goes to `--out`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.large_file import BLOCK, cpu_model, cpu_seconds, cpu_seconds_once_idle
from tests.conftest import s3_client
from tests.gateway_process import ARTIFACTS, run_gateway
from tests.storage_servers import S3Server, azurite_blob, free_ports, seaweed_s3, stop

GIB = 1 << 30
ROOT = Path(__file__).resolve().parent.parent
BUCKET = "bench"


# -- servers -------------------------------------------------------------------------------------


class TreeRss:
    """Peak RSS of a process tree, sampled every 50 ms by one thread for all trees.

    Listing a tree's children scans every process on the machine, so it is refreshed once a
    second only: a sampler must not steal the client's time on a 2-core machine.
    """

    _trees: ClassVar[list[TreeRss]] = []
    _lock = threading.Lock()
    _thread: ClassVar[threading.Thread | None] = None

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.members = [self.root, *self.root.children(recursive=True)]
        self.refreshed = time.monotonic()
        self.peak = 0
        self.active = True
        with TreeRss._lock:
            TreeRss._trees.append(self)
            if TreeRss._thread is None:
                TreeRss._thread = threading.Thread(target=TreeRss._run, daemon=True)
                TreeRss._thread.start()

    def sample(self) -> int:
        if time.monotonic() - self.refreshed > 1.0:
            with contextlib.suppress(psutil.Error):
                self.members = [self.root, *self.root.children(recursive=True)]
            self.refreshed = time.monotonic()
        total = 0
        for proc in self.members:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        self.peak = max(self.peak, total)
        return total

    def stop(self) -> int:
        self.active = False
        with TreeRss._lock:
            if self in TreeRss._trees:
                TreeRss._trees.remove(self)
        return self.peak

    @classmethod
    def _run(cls) -> None:
        while True:
            with cls._lock:
                trees = list(cls._trees)
            for tree in trees:
                if tree.active:
                    tree.sample()
            time.sleep(0.05)


@dataclass
class Server:
    """One server under test: where to reach it, its process tree, and how to check what it stored."""

    name: str
    url: str
    pid: int
    read_stored: Callable[[str], Iterator[bytes]] | None  # None: the server keeps nothing (the ceiling)
    clear: Callable[[str], None]  # removes what it stored under a path, everything for ""
    rss: TreeRss = field(init=False)
    idle_rss: int = field(init=False)

    def __post_init__(self) -> None:
        self.rss = TreeRss(self.pid)
        self.idle_rss = self.rss.sample()

    def artifact(self, path: str) -> str:
        return f"{self.url}{ARTIFACTS}/{path}"

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def cpu_once_idle(self) -> float:
        """`cpu` once the server has finished what it does after answering (see `cpu_seconds_once_idle`)."""
        return cpu_seconds_once_idle(self.pid)


def tree_rss(pid: int) -> int:
    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not become healthy:\n{log.read_text()[-3000:]}")


def mlflow_server_command(destination: str | Path, *, store: str | None = None, workers: int = 4) -> list[str]:
    """A stock `mlflow server` on 127.0.0.1 (port appended by `process`): proxied artifacts in
    `destination` with the tracking store `store`, or `--artifacts-only` without one."""
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--workers", str(workers)]
    command += ["--backend-store-uri", store] if store is not None else ["--artifacts-only"]
    return [*command, "--artifacts-destination", str(destination)]


@contextlib.contextmanager
def process(name: str, command: list[str], work: Path, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """Run a server on a free port (appended as `--port N`) until the block ends; yields (url, pid)."""
    port = free_ports(1)[0]
    log = work / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc, log)
        yield url, proc.pid
    finally:
        stop(proc)


class Backend:
    """Where the gateway and MLflow store: a local directory each, or a prefix each in one bucket."""

    def __init__(self, kind: str, work: Path, s3: S3Server | None = None) -> None:
        self.kind = kind
        self.work = work
        self.s3 = s3
        self.client: Any = None
        if s3 is not None:
            self.client = s3_client(s3)
            with contextlib.suppress(self.client.exceptions.BucketAlreadyOwnedByYou):
                self.client.create_bucket(Bucket=BUCKET)

    def destination(self, owner: str) -> str:
        if self.kind == "s3":
            return f"s3://{BUCKET}/{owner}"
        path = self.work / f"{owner}-artifacts"
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def env(self) -> dict[str, str]:
        if self.s3 is None:
            return {}
        return {**self.s3.env(), "ARTIFACT_GATEWAY_S3_ADDRESSING_STYLE": "path"}

    def reader(self, owner: str) -> Callable[[str], Iterator[bytes]]:
        def read(path: str) -> Iterator[bytes]:
            if self.client is not None:
                body = self.client.get_object(Bucket=BUCKET, Key=f"{owner}/{path}")["Body"]
                yield from body.iter_chunks(BLOCK)
                return
            with open(Path(self.destination(owner)) / path, "rb") as stored:
                while block := stored.read(BLOCK):
                    yield block

        return read

    def clearer(self, owner: str) -> Callable[[str], None]:
        def clear(path: str = "") -> None:
            if self.client is None:
                target = Path(self.destination(owner)) / path
                if target.is_file():
                    target.unlink()
                else:
                    shutil.rmtree(target, ignore_errors=True)
                return
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{owner}/{path}")
            for page in pages:
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})

        return clear


@contextlib.contextmanager
def start_servers(backend: Backend, work: Path, sources: Path, args: argparse.Namespace) -> Iterator[list[Server]]:
    with contextlib.ExitStack() as stack:
        gateway = stack.enter_context(
            run_gateway(
                work / "gateway",
                "--artifacts-only",
                *args.gateway_arg,
                env=backend.env(),
                destination=backend.destination("gateway"),
            )
        )
        servers = [
            Server("gateway", gateway.url, gateway.proc.pid, backend.reader("gateway"), backend.clearer("gateway"))
        ]
        mlflow_command = mlflow_server_command(backend.destination("mlflow"), workers=args.mlflow_workers)
        url, pid = stack.enter_context(process("mlflow", mlflow_command, work, backend.env()))
        servers.append(Server("mlflow", url, pid, backend.reader("mlflow"), backend.clearer("mlflow")))
        if backend.kind == "local":
            ceiling_command = [sys.executable, str(ROOT / "benchmarks" / "ceiling_server.py"), "--root", str(sources)]
            url, pid = stack.enter_context(process("ceiling", ceiling_command, work, {}))
            servers.append(Server("ceiling", url, pid, None, lambda path="": None))
        yield servers
        for server in servers:
            server.rss.stop()


# -- the client ----------------------------------------------------------------------------------


class Mismatch(SystemExit):
    pass


async def upload(session: aiohttp.ClientSession, url: str, source: Path) -> None:
    """PUT a whole file (aiohttp reads it in 256 KiB slices; faster than an async generator here)."""
    with open(source, "rb") as body:
        headers = {"Content-Length": str(source.stat().st_size), "Content-Type": "application/octet-stream"}
        async with session.put(url, data=body, headers=headers) as response:
            answer = await response.read()
            if response.status != 200:
                raise Mismatch(f"PUT {url}: {response.status} {answer[:300]!r}")


async def upload_bytes(session: aiohttp.ClientSession, url: str, data: bytes) -> float:
    started = time.perf_counter()
    async with session.put(url, data=data, headers={"Content-Type": "application/octet-stream"}) as response:
        answer = await response.read()
        if response.status != 200:
            raise Mismatch(f"PUT {url}: {response.status} {answer[:300]!r}")
    return time.perf_counter() - started


async def download(session: aiohttp.ClientSession, url: str, expected: str, size: int) -> tuple[float, float]:
    """(seconds, seconds to the first body byte); the body is hashed as it arrives."""
    digest = hashlib.sha256()
    received = 0
    started = time.perf_counter()
    ttfb = 0.0
    async with session.get(url) as response:
        if response.status != 200:
            raise Mismatch(f"GET {url}: {response.status} {(await response.read())[:300]!r}")
        async for chunk in response.content.iter_chunked(BLOCK):
            if not received:
                ttfb = time.perf_counter() - started
            digest.update(chunk)
            received += len(chunk)
    elapsed = time.perf_counter() - started
    if received != size or digest.hexdigest() != expected:
        raise Mismatch(f"GET {url}: {received} bytes, sha256 {digest.hexdigest()}; expected {size}, {expected}")
    return elapsed, ttfb


async def bounded(jobs: list[Callable[[], Any]], in_flight: int) -> list[Any]:
    """Run coroutine factories with at most `in_flight` at once; results in job order."""
    gate = asyncio.Semaphore(in_flight)

    async def one(job: Callable[[], Any]) -> Any:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in jobs)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- workloads -----------------------------------------------------------------------------------


@dataclass
class Data:
    """The sources every server gets: one large file, a concurrent-upload file, many small blobs."""

    root: Path
    large: Path
    large_sha: str
    medium: Path
    medium_sha: str
    small: list[bytes]
    small_sha: list[str]

    @property
    def large_size(self) -> int:
        return self.large.stat().st_size

    @property
    def medium_size(self) -> int:
        return self.medium.stat().st_size


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """These environment variables set for the block, each put back as it was after (unset if it was)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def write_random(path: Path, size: int, block: int = 64 * BLOCK) -> str:
    """A file of `size` bytes of a repeated random block (generating every byte would take minutes)."""
    pattern = os.urandom(min(block, size) or 1)
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            piece = pattern[: min(left, len(pattern))]
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def make_data(root: Path, args: argparse.Namespace) -> Data:
    root.mkdir(parents=True, exist_ok=True)
    large, medium = root / "large.bin", root / "medium.bin"
    large_sha = write_random(large, args.size_mib * BLOCK)
    medium_sha = write_random(medium, args.parallel_mib * BLOCK)
    small = [os.urandom(args.small_kib * 1024) for _ in range(args.small_files)]
    (root / "small").mkdir(exist_ok=True)
    for index, blob in enumerate(small):
        (root / "small" / f"{index}.bin").write_bytes(blob)
    return Data(root, large, large_sha, medium, medium_sha, small, [hashlib.sha256(b).hexdigest() for b in small])


Sample = dict[str, float]


def settle() -> None:
    """Flush dirty pages so no leg pays for the previous leg's writeback (MLflow never fsyncs)."""
    os.sync()
    time.sleep(0.3)


DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def can_drop_caches() -> bool:
    return os.access(DROP_CACHES, os.W_OK)


def forget_deleted_inodes(data: Data) -> None:
    """Before a small-file leg: write back and drop the page cache (root only), then read the sources back.

    On ext4 without a journal (this machine's disk), each new inode is first checked against every
    free one deleted in the last minutes whose inode-table block is still cached: right after files
    were deleted, that check was a fifth of the machine's CPU during small uploads (perf; the
    deletions of earlier runs, or of whatever ran before the bench). Without root this is `settle`.
    """
    settle()
    if not can_drop_caches():
        return
    DROP_CACHES.write_text("1")
    # Every source back into the cache, as the legs found them before: the ceiling answers small GETs
    # from the small sources, and the large legs upload the large ones.
    for source in [data.large, data.medium, *sorted((data.root / "small").iterdir())]:
        with open(source, "rb") as stream:
            while stream.read(64 * BLOCK):
                pass


async def large_legs(server: Server, data: Data, run: str) -> Sample:
    url = server.artifact(f"{run}/large.bin")
    size = data.large_size
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        settle()
        cpu, started = server.cpu(), time.perf_counter()
        await upload(session, url, data.large)
        up_seconds = time.perf_counter() - started
        up_cpu = server.cpu_once_idle() - cpu  # the gateway hashes the file after its answer
        settle()
        cpu = server.cpu()
        down_seconds, ttfb = await download(session, url, data.large_sha, size)
        down_cpu = server.cpu() - cpu
    # Checked and removed now, not at the end of the run: on this virtual machine, writes into page
    # cache grown past a few GiB cost several times as much, so a server's upload would otherwise pay
    # for the files of the servers before it in the run (benchmarks/RESULTS.md, page-cache memory).
    verify_stored(server, {f"{run}/large.bin": data.large_sha})
    server.clear(f"{run}/large.bin")
    return {
        "large_up_mibs": size / BLOCK / up_seconds,
        "large_up_cpu_per_gib": up_cpu * GIB / size,
        "large_down_mibs": size / BLOCK / down_seconds,
        "large_down_ttfb_ms": ttfb * 1000,
        "large_down_cpu_per_gib": down_cpu * GIB / size,
    }


async def small_legs(server: Server, data: Data, run: str, in_flight: int) -> Sample:
    forget_deleted_inodes(data)
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:
        urls = [server.artifact(f"{run}/small/{index}.bin") for index in range(len(data.small))]
        started = time.perf_counter()
        up = await bounded(
            [functools.partial(upload_bytes, session, url, blob) for url, blob in zip(urls, data.small, strict=True)],
            in_flight,
        )
        up_seconds = time.perf_counter() - started
        started = time.perf_counter()
        down = await bounded(
            [
                functools.partial(download, session, url, sha, len(blob))
                for url, sha, blob in zip(urls, data.small_sha, data.small, strict=True)
            ],
            in_flight,
        )
        down_seconds = time.perf_counter() - started
    down_latency = [seconds for seconds, _ in down]
    return {
        "small_up_fps": len(urls) / up_seconds,
        "small_up_p50_ms": percentile(up, 0.5) * 1000,
        "small_up_p99_ms": percentile(up, 0.99) * 1000,
        "small_down_fps": len(urls) / down_seconds,
        "small_down_p50_ms": percentile(down_latency, 0.5) * 1000,
        "small_down_p99_ms": percentile(down_latency, 0.99) * 1000,
    }


async def parallel_leg(server: Server, data: Data, run: str, count: int) -> Sample:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        settle()
        started = time.perf_counter()
        await asyncio.gather(
            *(upload(session, server.artifact(f"{run}/parallel/{index}.bin"), data.medium) for index in range(count))
        )
        seconds = time.perf_counter() - started
    server.cpu_once_idle()  # the next leg does not share the cores with this one's after-work
    return {"parallel_up_mibs": count * data.medium_size / BLOCK / seconds}


async def warm_up(server: Server, data: Data) -> None:
    """Unmeasured: the first requests after start pay for lazy imports (seconds for MLflow)."""
    async with aiohttp.ClientSession() as session:
        for index in range(3):
            url = server.artifact(f"warmup/{index}.bin")
            await upload(session, url, data.medium)
            await download(session, url, data.medium_sha, data.medium_size)
            await upload_bytes(session, server.artifact(f"warmup/{index}.small"), data.small[0])


def verify_stored(server: Server, expected: dict[str, str]) -> None:
    """Read back what the server stored at each path, from the backend itself, and compare digests."""
    if server.read_stored is None:
        return
    for path, sha in expected.items():
        digest = hashlib.sha256()
        for block in server.read_stored(path):
            digest.update(block)
        if digest.hexdigest() != sha:
            raise Mismatch(f"{server.name} stored {path} with sha256 {digest.hexdigest()}, expected {sha}")


def compare(backend: Backend, work: Path, data: Data, args: argparse.Namespace, runs: int) -> dict[str, Any]:
    """Every workload on every server, `runs` times, rotating the order; returns samples and memory."""
    samples: dict[str, list[Sample]] = {}
    memory: dict[str, dict[str, float]] = {}
    with start_servers(backend, work, data.root, args) as servers:
        for server in servers:
            if server.name != "ceiling":  # the ceiling serves GETs from the sources, not what was put
                asyncio.run(warm_up(server, data))
        for run in range(runs):
            label = f"run{run}"
            order = servers[run % len(servers) :] + servers[: run % len(servers)]
            per_server: dict[str, Sample] = {server.name: {} for server in servers}
            workloads: list[Callable[[Server], Any]] = [
                functools.partial(large_legs, data=data, run=label),
                functools.partial(small_legs, data=data, run=label, in_flight=args.concurrency),
                functools.partial(parallel_leg, data=data, run=label, count=args.parallel),
            ]
            for workload in workloads:
                for server in order:
                    per_server[server.name].update(asyncio.run(workload(server)))
            expected = {f"{label}/parallel/{index}.bin": data.medium_sha for index in range(args.parallel)}
            expected.update({f"{label}/small/{index}.bin": sha for index, sha in enumerate(data.small_sha)})
            for server in servers:
                verify_stored(server, expected)  # the large file was checked after its legs
                server.clear(f"{label}/parallel")
                samples.setdefault(server.name, []).append(per_server[server.name])
                brief = ", ".join(f"{k} {v:.1f}" for k, v in per_server[server.name].items())
                print(f"[{backend.kind}] {label} {server.name}: {brief}", file=sys.stderr)
        for server in servers:
            memory[server.name] = {"idle_rss_mib": server.idle_rss / BLOCK, "peak_rss_mib": server.rss.peak / BLOCK}
            # The small files go last: on ext4 without a journal (this machine's disk) every new inode
            # is checked against those deleted in the last minutes, so deleting thousands of files
            # between runs would tax the next run's small uploads (benchmarks/RESULTS.md, deleted inodes).
            server.clear("")
    medians = {
        name: {metric: statistics.median(sample[metric] for sample in runs_) for metric in runs_[0]}
        for name, runs_ in samples.items()
    }
    for name, figures in memory.items():
        medians[name].update(figures)
    return {"runs": runs, "samples": samples, "medians": medians}


# -- flat memory: the gateway alone, a 1 GiB and an N GiB object, every backend -----------------


def flat_memory(kind: str, work: Path, sizes: list[tuple[Path, str]], args: argparse.Namespace) -> dict[str, float]:
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        if kind == "local":
            destination = str(work / "flat-local")
        elif kind == "s3":
            s3, _ = stack.enter_context(seaweed_s3(work / "flat-seaweed"))
            Backend("s3", work, s3)
            destination, env = f"s3://{BUCKET}/flat", {**s3.env(), "ARTIFACT_GATEWAY_S3_ADDRESSING_STYLE": "path"}
        else:
            azure, _ = stack.enter_context(azurite_blob(work / "flat-azurite"))
            from azure.storage.blob import BlobServiceClient

            BlobServiceClient.from_connection_string(azure.connection_string).create_container(BUCKET)
            destination = f"wasbs://{BUCKET}@{azure.account}.blob.core.windows.net/flat"
            env = {"AZURE_STORAGE_CONNECTION_STRING": azure.connection_string}
        gateway = stack.enter_context(
            run_gateway(
                work / f"flat-{kind}-gw", "--artifacts-only", *args.gateway_arg, env=env, destination=destination
            )
        )
        pid = gateway.proc.pid
        result = {"idle_rss_mib": tree_rss(pid) / BLOCK}
        for source, sha in sizes:
            size = source.stat().st_size
            sampler = TreeRss(pid)

            async def move(source: Path = source, sha: str = sha, size: int = size) -> tuple[float, float]:
                url = gateway.artifact_url(f"flat/{source.name}")
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
                    started = time.perf_counter()
                    await upload(session, url, source)
                    up = time.perf_counter() - started
                    down, _ = await download(session, url, sha, size)
                return size / BLOCK / up, size / BLOCK / down

            up_mibs, down_mibs = asyncio.run(move())
            gib = size / GIB
            result[f"peak_rss_mib_{gib:g}gib"] = sampler.stop() / BLOCK
            result[f"up_mibs_{gib:g}gib"] = up_mibs
            result[f"down_mibs_{gib:g}gib"] = down_mibs
            print(
                f"[flat {kind}] {gib:g} GiB: up {up_mibs:.0f}, down {down_mibs:.0f} MiB/s, "
                f"peak RSS {result[f'peak_rss_mib_{gib:g}gib']:.0f} MiB",
                file=sys.stderr,
            )
        if kind == "local":
            shutil.rmtree(work / "flat-local", ignore_errors=True)
        return result


# -- report --------------------------------------------------------------------------------------

ROWS: list[tuple[str, str, bool]] = [  # metric, label, higher is better
    ("large_up_mibs", "1 file upload, MiB/s", True),
    ("large_down_mibs", "1 file download, MiB/s", True),
    ("large_down_ttfb_ms", "download time to first byte, ms", False),
    ("large_up_cpu_per_gib", "server CPU-s per GiB, upload (with what it does after the answer)", False),
    ("large_down_cpu_per_gib", "server CPU-s per GiB, download", False),
    ("small_up_fps", "small uploads, files/s", True),
    ("small_up_p50_ms", "small upload p50, ms", False),
    ("small_up_p99_ms", "small upload p99, ms", False),
    ("small_down_fps", "small downloads, files/s", True),
    ("small_down_p50_ms", "small download p50, ms", False),
    ("small_down_p99_ms", "small download p99, ms", False),
    ("parallel_up_mibs", "concurrent uploads, aggregate MiB/s", True),
    ("idle_rss_mib", "server RSS idle, MiB (process tree)", False),
    ("peak_rss_mib", "server RSS peak, MiB (process tree)", False),
]


def number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def ratio(gateway: float, other: float, higher_is_better: bool) -> str:
    if not other or not gateway:
        return ""
    value = gateway / other if higher_is_better else other / gateway
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def comparison_table(result: dict[str, Any]) -> list[str]:
    medians = result["medians"]
    names = [name for name in ("mlflow", "gateway", "ceiling") if name in medians]
    titles = {"mlflow": "MLflow", "gateway": "gateway", "ceiling": "ceiling"}
    header = "| workload | " + " | ".join(titles[n] for n in names) + " | gateway vs MLflow |"
    if "ceiling" in medians:  # what any aiohttp server could at best reach against MLflow here
        header += " gateway vs ceiling | ceiling vs MLflow |"
    lines = [header, "|" + " --- |" * (header.count("|") - 1)]
    for metric, label, higher in ROWS:
        if metric not in medians["gateway"]:
            continue
        gateway, mlflow = medians["gateway"][metric], medians["mlflow"][metric]
        cells = [number(medians[name][metric]) if metric in medians[name] else "" for name in names]
        row = f"| {label} | " + " | ".join(cells) + f" | {ratio(gateway, mlflow, higher)} |"
        if "ceiling" in medians:
            ceiling = medians["ceiling"].get(metric, 0.0)
            throughput = metric.endswith(("mibs", "fps"))
            row += f" {ratio(gateway, ceiling, higher) if throughput else ''} |"
            row += f" {ratio(ceiling, mlflow, higher) if throughput else ''} |"
        lines.append(row)
    return lines


def targets(results: dict[str, Any]) -> list[str]:
    local = results["local"]["medians"]
    gw, ml, ce = local["gateway"], local["mlflow"], local.get("ceiling", {})
    checks: list[tuple[str, str, bool]] = []
    for leg in ("up", "down"):
        key = f"large_{leg}_mibs"
        vs_mlflow, vs_ceiling = gw[key] / ml[key], gw[key] / ce.get(key, float("inf"))
        checks.append((f"1 GiB {leg}load >= 5x MLflow", f"{vs_mlflow:.1f}x", vs_mlflow >= 5))
        checks.append((f"1 GiB {leg}load >= 0.8x ceiling", f"{vs_ceiling:.2f}x", vs_ceiling >= 0.8))
    for leg in ("up", "down"):
        key = f"small_{leg}_fps"
        vs_mlflow = gw[key] / ml[key]
        checks.append((f"small {leg}loads >= 8x MLflow files/s", f"{vs_mlflow:.1f}x", vs_mlflow >= 8))
        p99 = gw[f"small_{leg}_p99_ms"]
        checks.append((f"small {leg}load p99 < 50 ms", f"{p99:.1f} ms", p99 < 50))
    for leg in ("up", "down"):
        cpu = gw[f"large_{leg}_cpu_per_gib"]
        checks.append((f"server CPU < 1 s per GiB, {leg}load, local disk", f"{cpu:.2f} s", cpu < 1))
    checks.append(("gateway peak RSS < 80 MiB, one worker", f"{gw['peak_rss_mib']:.0f} MiB", gw["peak_rss_mib"] < 80))
    if "s3" in results:
        ttfb = results["s3"]["medians"]["gateway"]["large_down_ttfb_ms"]
        checks.append(("S3: 1 GiB download time to first byte < 100 ms", f"{ttfb:.0f} ms", ttfb < 100))
    lines = ["| target | reached | met |", "| --- | --- | --- |"]
    lines += [f"| {name} | {value} | {'yes' if ok else '**no**'} |" for name, value, ok in checks]
    return lines


def describe_run(args: argparse.Namespace, started: datetime, seconds: float) -> dict[str, Any]:
    """Where, when and how the figures were taken; kept in the JSON so a report can be re-rendered."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    import mlflow

    return {
        "started": started.isoformat(),
        "minutes": round(seconds / 60, 1),
        "commit": commit.strip() or "?",
        "machine": f"{os.cpu_count()} cores ({cpu_model()}), {psutil.virtual_memory().total / GIB:.0f} GiB RAM",
        "python": platform.python_version(),
        "mlflow": mlflow.__version__,
        "command": " ".join(["./dev bench", *sys.argv[1:]]),
        "mlflow_workers": args.mlflow_workers,
        "caches_dropped": can_drop_caches(),
        "workloads": f"one {args.size_mib} MiB file up and down; {args.small_files} x {args.small_kib} KiB files up "
        f"then down, {args.concurrency} in flight; {args.parallel} x {args.parallel_mib} MiB uploads at once",
    }


def write_report(results: dict[str, Any], args: argparse.Namespace, meta: dict[str, Any]) -> Path:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.fromisoformat(meta["started"])
    lines = [
        "# Gateway vs MLflow, side by side",
        "",
        f"Measured {started:%Y-%m-%d %H:%M} UTC at commit {meta['commit']} in {meta['minutes']:.0f} min, on "
        f"{meta['machine']}, Python {meta['python']}, MLflow {meta['mlflow']}.",
        f"Command: `{meta['command']}`",
        "",
        f"Servers: the gateway (one worker, `--artifacts-only` like MLflow, otherwise defaults: fsync on, SHA-256 "
        "of every upload, after the answer for bodies over 1 MiB), `mlflow server "
        f"--artifacts-only --workers {meta['mlflow_workers']}`, and the ceiling (`benchmarks/ceiling_server.py`: "
        "aiohttp discarding uploads, sendfile for downloads). One Python aiohttp client on loopback shares the "
        "cores with them. Medians of interleaved runs; every byte verified by SHA-256."
        + {
            True: " Before each small-file leg the page cache was written back and dropped (see benchmarks/RESULTS.md, "
            "deleted inodes).",
            False: " The page cache was not dropped before the small-file legs (not root).",
            None: "",  # a report from before the drop existed
        }[meta.get("caches_dropped")],
        f"Workloads: {meta['workloads']}.",
        "",
    ]
    for kind, result in results.items():
        if kind == "flat":
            continue
        lines += [f"## {'Local disk' if kind == 'local' else 'S3 (SeaweedFS)'}, {result['runs']} run(s)", ""]
        lines += comparison_table(result)
        lines.append("")
    if "flat" in results:
        sizes = sorted(
            {key.rsplit("_", 1)[1] for figures in results["flat"].values() for key in figures if key.startswith("peak")}
        )
        lines += [
            "## Gateway memory against object size",
            "",
            "| backend | idle RSS, MiB | " + " | ".join(f"peak RSS {s}, MiB | up/down MiB/s {s}" for s in sizes) + " |",
        ]
        lines.append("|" + " --- |" * (2 + 2 * len(sizes)))
        for kind, figures in results["flat"].items():
            cells = [
                f"{figures[f'peak_rss_mib_{s}']:.0f} | {figures[f'up_mibs_{s}']:.0f} / {figures[f'down_mibs_{s}']:.0f}"
                for s in sizes
            ]
            lines.append(f"| {kind} | {figures['idle_rss_mib']:.0f} | " + " | ".join(cells) + " |")
        lines.append("")
    if "local" in results:
        lines += ["## Targets (performance issue)", "", *targets(results), ""]
    lines += ["![chart](versus-mlflow.png)", ""]
    report = out / "versus-mlflow.md"
    report.write_text("\n".join(lines))
    raw = {"meta": meta, "results": results}
    (out / "versus-mlflow.json").write_text(json.dumps(raw, indent=1, sort_keys=True))
    chart(results, out / "versus-mlflow.png")
    return report


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        (
            "1 GiB MiB/s",
            ["large_up_mibs", "large_down_mibs", "parallel_up_mibs"],
            ["upload", "download", "8 concurrent up"],
        ),
        ("small files/s", ["small_up_fps", "small_down_fps"], ["upload", "download"]),
        ("peak RSS MiB", ["peak_rss_mib"], ["peak RSS"]),
    ]
    kinds = [kind for kind in results if kind != "flat"]
    figure, axes = plt.subplots(len(kinds), len(panels), figsize=(13, 3.6 * len(kinds)), squeeze=False)
    colours = {"mlflow": "#4c72b0", "gateway": "#dd8452", "ceiling": "#aaaaaa"}
    for row, kind in enumerate(kinds):
        medians = results[kind]["medians"]
        for column, (title, metrics, labels) in enumerate(panels):
            axis = axes[row][column]
            names = [name for name in ("mlflow", "gateway", "ceiling") if name in medians]
            width = 0.8 / len(names)
            for offset, name in enumerate(names):
                values = [medians[name].get(metric, 0.0) for metric in metrics]
                xs = [index + offset * width for index in range(len(metrics))]
                axis.bar(xs, values, width, label=name, color=colours[name])
            axis.set_xticks([index + width * (len(names) - 1) / 2 for index in range(len(metrics))], labels)
            axis.set_title(f"{'local disk' if kind == 'local' else 'S3'}: {title}")
            axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)


# -- main ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs on local disk (default 3)")
    parser.add_argument(
        "--s3-runs", type=int, default=1, help="runs on S3 (default 1: MLflow copies each 1 GiB download to disk first)"
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="the large file (default 1024)")
    parser.add_argument("--small-files", type=int, default=2000)
    parser.add_argument("--small-kib", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32, help="small-file requests in flight (default 32)")
    parser.add_argument("--parallel", type=int, default=8, help="concurrent large uploads (default 8)")
    parser.add_argument("--parallel-mib", type=int, default=128, help="size of each concurrent upload (default 128)")
    parser.add_argument("--backends", default="local,s3", help="comma list of local, s3 (default both)")
    parser.add_argument("--flat-gib", type=int, default=8, help="the large object of the memory check; 0 skips it")
    parser.add_argument("--flat-backends", default="local,s3,azure")
    parser.add_argument("--mlflow-workers", type=int, default=4)
    parser.add_argument("--gateway-arg", action="append", default=[], help="extra flag for the gateway (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks", help="report directory")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch space (default: system temp)")
    parser.add_argument("--quick", action="store_true", help="small sizes, one run: a smoke test of the suite")
    parser.add_argument("--from-json", type=Path, help="only re-render the report from a saved versus-mlflow.json")
    args = parser.parse_args()
    if args.from_json:
        raw = json.loads(args.from_json.read_text())
        report = write_report(raw["results"], args, raw["meta"])
        print(f"report: {report}", file=sys.stderr)
        return 0
    if args.quick:
        args.runs, args.s3_runs, args.size_mib, args.small_files, args.parallel_mib, args.flat_gib = (
            1,
            1,
            256,
            500,
            32,
            2,
        )

    started, clock = datetime.now(UTC), time.monotonic()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="versus-mlflow-") as scratch:
        work = Path(scratch)
        print(f"creating sources in {work} ...", file=sys.stderr)
        data = make_data(work / "sources", args)
        for kind in [k.strip() for k in args.backends.split(",") if k.strip()]:
            if kind == "local":
                results["local"] = compare(Backend("local", work / "local"), work / "local", data, args, args.runs)
            elif kind == "s3":
                with seaweed_s3(work / "seaweed") as (s3, _):
                    (work / "s3").mkdir()
                    results["s3"] = compare(Backend("s3", work / "s3", s3), work / "s3", data, args, args.s3_runs)
            else:
                parser.error(f"unknown backend {kind!r}")
        if args.flat_gib:
            huge = work / "sources" / f"object-{args.flat_gib}gib.bin"
            one = work / "sources" / "object-1gib.bin"
            sizes = [(one, write_random(one, GIB)), (huge, write_random(huge, args.flat_gib * GIB))]
            results["flat"] = {}
            for kind in [k.strip() for k in args.flat_backends.split(",") if k.strip()]:
                results["flat"][kind] = flat_memory(kind, work, sizes, args)
    report = write_report(results, args, describe_run(args, started, time.monotonic() - clock))
    print(report.read_text())
    print(f"report: {report}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
