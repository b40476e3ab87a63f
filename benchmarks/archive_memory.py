"""Folder archives through a freshly started gateway: speed, server CPU, and peak memory against size.

Not a test: run it by hand (`.venv/bin/python benchmarks/archive_memory.py`, about five minutes on
two cores with S3). For each backend (local disk; S3 on SeaweedFS when `weed` is installed) it
starts `artifact-gateway serve --artifacts-only`, stores a 256 MiB and a 2 GiB folder (a few large
files and many small ones, random bytes: the incompressible worst case for tar.gz), downloads each
as zip and as tar.gz while sampling the gateway's RSS over its process tree, then checks every
member of every archive by SHA-256 against the source (a mismatch exits non-zero). The archive is
saved to a scratch file by the client only, to be read back; the gateway stages nothing.

The claim under test: the gateway's peak RSS is the same for 256 MiB as for 2 GiB.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import platform
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.large_file import PeakRss, cpu_model, cpu_seconds
from tests.gateway_process import RunningGateway, run_gateway

MIB = 1 << 20
ARCHIVE = "/api/2.0/mlflow-artifacts/archive"
FORMATS = ("zip", "tar.gz")


@dataclass
class Result:
    backend: str
    folder_mib: int
    archive_format: str
    archive_bytes: int
    seconds: float
    server_cpu: float
    peak_rss: int
    members: int

    @property
    def mib_s(self) -> float:
        return self.folder_mib / self.seconds


def folder_layout(total_mib: int) -> dict[str, int]:
    """Relative name -> size: three large files holding 3/4 of the bytes, the rest in 256 KiB files."""
    large = total_mib * MIB * 3 // 4 // 3
    small = 256 * 1024
    layout = {f"model/shard-{index}.bin": large for index in range(3)}
    count = (total_mib * MIB - 3 * large) // small
    layout.update({f"data/part-{index // 100:03d}/{index:05d}.bin": small for index in range(count)})
    return layout


def random_files(layout: dict[str, int]) -> Iterator[tuple[str, Iterator[bytes]]]:
    for name, size in layout.items():

        def blocks(size: int = size) -> Iterator[bytes]:
            left = size
            while left:
                block = os.urandom(min(8 * MIB, left))
                left -= len(block)
                yield block

        yield name, blocks()


class LocalStore:
    """Writes the folder straight into the gateway's destination directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, blocks: Iterator[bytes]) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with open(path, "wb") as out:
            for block in blocks:
                digest.update(block)
                out.write(block)
        return digest.hexdigest()


class S3Store:
    """Uploads the folder to the bucket with boto3."""

    def __init__(self, client: object, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def write(self, name: str, blocks: Iterator[bytes]) -> str:
        data = b"".join(blocks)  # the benchmark client's memory, not the gateway's
        self.client.put_object(Bucket=self.bucket, Key=f"root/{name}", Body=data)  # type: ignore[attr-defined]
        return hashlib.sha256(data).hexdigest()


def store_folder(store: LocalStore | S3Store, folder: str, total_mib: int) -> dict[str, str]:
    top = folder.rsplit("/", 1)[-1]
    return {
        f"{top}/{name}": store.write(f"{folder}/{name}", blocks)
        for name, blocks in random_files(folder_layout(total_mib))
    }


def download(gateway: RunningGateway, folder: str, archive_format: str, into: Path) -> tuple[int, float, float, int]:
    """(archive bytes, seconds, server CPU-seconds, peak RSS) of one archive download saved to `into`."""
    pid = gateway.proc.pid
    sampler = PeakRss(pid)
    cpu0 = cpu_seconds(pid)
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=600)
    connection.request("GET", f"{ARCHIVE}/{folder}?format={archive_format}")
    response = connection.getresponse()
    if response.status != 200:
        raise SystemExit(f"archive failed: {response.status} {response.read()[:300]!r}")
    total = 0
    with open(into, "wb") as out:
        while block := response.read(MIB):
            out.write(block)
            total += len(block)
    connection.close()
    seconds = time.perf_counter() - started
    return total, seconds, cpu_seconds(pid) - cpu0, sampler.stop()


def verify(path: Path, archive_format: str, expected: dict[str, str]) -> int:
    """Check every file member against `expected` (name -> SHA-256); return the member count."""
    found: dict[str, str] = {}
    if archive_format == "zip":
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    digest = hashlib.sha256()
                    with archive.open(info) as member:
                        while block := member.read(8 * MIB):
                            digest.update(block)
                    found[info.filename] = digest.hexdigest()
    else:
        with tarfile.open(path, mode="r|gz") as stream:
            for member in stream:
                if member.isfile():
                    digest = hashlib.sha256()
                    extracted = stream.extractfile(member)
                    assert extracted is not None
                    while block := extracted.read(8 * MIB):
                        digest.update(block)
                    found[member.name] = digest.hexdigest()
    if found != expected:
        wrong = sorted(set(found.items()) ^ set(expected.items()))[:5]
        raise SystemExit(f"{path.name}: archive does not match the source, e.g. {wrong}")
    return len(found)


def run_backend(
    backend: str, work: Path, sizes: list[int], gateway: RunningGateway, store: LocalStore | S3Store
) -> list[Result]:
    results = []
    idle = psutil.Process(gateway.proc.pid).memory_info().rss
    print(f"[{backend}] gateway idle RSS {idle / MIB:.0f} MiB", file=sys.stderr)
    for size in sizes:
        folder = f"bench/{size}mib"
        print(f"[{backend}] storing a {size} MiB folder ...", file=sys.stderr)
        expected = store_folder(store, folder, size)
        for archive_format in FORMATS:
            scratch = work / f"download.{archive_format}"
            archive_bytes, seconds, cpu, peak = download(gateway, folder, archive_format, scratch)
            members = verify(scratch, archive_format, expected)
            scratch.unlink()
            result = Result(backend, size, archive_format, archive_bytes, seconds, cpu, peak, members)
            print(
                f"[{backend}] {size} MiB {archive_format}: {result.mib_s:.0f} MiB/s, {cpu:.1f} CPU-s, "
                f"peak RSS {peak / MIB:.0f} MiB, {members} files verified",
                file=sys.stderr,
            )
            results.append(result)
    return results


def report(results: list[Result], idle: dict[str, int], sizes: list[int]) -> str:
    lines = [
        "# Folder archives: speed and memory against folder size (`benchmarks/archive_memory.py`)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores ({cpu_model()}), "
        f"{psutil.virtual_memory().total / (1 << 30):.0f} GiB, Python {platform.python_version()}, one gateway "
        "worker (`--artifacts-only`). Client and servers share the cores; the client saves each archive "
        "to a scratch file, then checks every member by SHA-256 against the source (all matched).",
        "",
        "Each folder: three large files with 3/4 of the bytes, the rest in 256 KiB files (random bytes, so "
        "tar.gz cannot shrink them: its worst case). MiB/s is folder MiB over the download's wall time; "
        "CPU-s is the gateway's (user + system over its process tree) during the download; peak RSS is "
        "sampled every 20 ms over the gateway's process tree.",
        "",
        "| backend | folder | files | format | archive MiB | MiB/s | server CPU-s | peak RSS MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.folder_mib} MiB | {r.members} | {r.archive_format} | {r.archive_bytes / MIB:,.0f} | "
            f"{r.mib_s:,.0f} | {r.server_cpu:.1f} | {r.peak_rss / MIB:.0f} |"
        )
    lines += ["", "Idle RSS before the downloads: " + ", ".join(f"{k} {v / MIB:.0f} MiB" for k, v in idle.items())]
    small, large = min(sizes), max(sizes)
    lines += ["", f"Peak RSS, {small} MiB folder against {large} MiB folder:", ""]
    for backend in idle:
        for archive_format in FORMATS:
            peaks = {
                r.folder_mib: r.peak_rss / MIB
                for r in results
                if r.backend == backend and r.archive_format == archive_format
            }
            lines.append(
                f"- {backend}, {archive_format}: {peaks[small]:.0f} MiB against {peaks[large]:.0f} MiB "
                f"({peaks[large] - peaks[small]:+.0f} MiB for {large // small}x the bytes)"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[256, 2048], help="folder sizes (default 256 2048)")
    parser.add_argument(
        "--backends", nargs="+", default=["local", "s3"], choices=["local", "s3"], help="s3 needs SeaweedFS (weed)"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where the scratch files and destination live")
    parser.add_argument("--report", type=Path, default=None, help="write the Markdown report here")
    args = parser.parse_args()

    results: list[Result] = []
    idle: dict[str, int] = {}
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        work = Path(scratch)
        if "local" in args.backends:
            with run_gateway(work / "local", "--artifacts-only") as gateway:
                idle["local"] = psutil.Process(gateway.proc.pid).memory_info().rss
                results += run_backend("local", work, args.sizes_mib, gateway, LocalStore(gateway.destination))
        if "s3" in args.backends:
            from tests.conftest import s3_client
            from tests.storage_servers import seaweed_s3

            try:
                servers = seaweed_s3(work / "weed")
                server, _ = servers.__enter__()
            except FileNotFoundError as exc:
                print(f"[s3] skipped: {exc}", file=sys.stderr)
            else:
                try:
                    client = s3_client(server)
                    client.create_bucket(Bucket="bench")
                    env = {**server.env(), "ARTIFACT_GATEWAY_S3_ADDRESSING_STYLE": "path"}
                    destination = "s3://bench/root"
                    with run_gateway(work / "s3", "--artifacts-only", env=env, destination=destination) as gateway:
                        idle["s3"] = psutil.Process(gateway.proc.pid).memory_info().rss
                        results += run_backend("s3", work, args.sizes_mib, gateway, S3Store(client, "bench"))
                finally:
                    servers.__exit__(None, None, None)
    text = report(results, idle, args.sizes_mib)
    print(text)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
