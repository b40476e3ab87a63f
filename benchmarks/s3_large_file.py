"""One large file to S3 (SeaweedFS) through a gateway, next to boto3 talking to the same server directly.

Not a test: run it by hand (`.venv/bin/python benchmarks/s3_large_file.py --size-mib 1024 --runs 3`).
It starts one SeaweedFS S3 server and one gateway with an `s3://` destination, then per run, in
alternating (ABBA) order: uploads the file with boto3 `upload_file` (8 MiB parts, 4 threads) and
through the gateway as one streamed PUT; downloads each object back, through the gateway and with
boto3 `get_object`. Every download is verified by SHA-256 and length (which also checks what each
upload stored); a mismatch exits non-zero. The bucket is emptied after each run.

Fairness: before each leg the page cache is synced and SeaweedFS must be idle. Each run starts with
an unmeasured boto3 upload of the same file, because SeaweedFS makes the first large upload after a
delete (of objects that were read) cost it about 40% more CPU; without the warm-up, whichever side
uploads first in a run pays for that.

Measured on the gateway: peak RSS of its process tree over the whole session (sampled every 20 ms),
idle RSS before and after, CPU seconds per leg, and bytes it wrote to local storage
(`write_bytes` of /proc/<pid>/io, which counts page-cache writes when they are dirtied, so a
spooled upload shows up even if it is never fsynced; it also counts the gateway's own log lines,
printed separately). SeaweedFS and client CPU per leg are reported for context: on a small
machine all three share the cores.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from boto3.s3.transfer import TransferConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.large_file import BLOCK, PeakRss, cpu_seconds, make_source
from tests.conftest import s3_client
from tests.gateway_process import ARTIFACTS, run_gateway
from tests.storage_servers import seaweed_s3

BUCKET = "bench"
PREFIX = "root"
PART = 8 * BLOCK
GIB = 1 << 30


@dataclass
class Leg:
    seconds: float
    ttfb: float = 0.0
    gateway_cpu: float = 0.0
    weed_cpu: float = 0.0
    client_cpu: float = 0.0
    gateway_peak_rss: int = 0


@dataclass
class Results:
    gateway_up: list[Leg] = field(default_factory=list)
    direct_up: list[Leg] = field(default_factory=list)
    gateway_down: list[Leg] = field(default_factory=list)
    direct_down: list[Leg] = field(default_factory=list)


class Meter:
    """Wall time, CPU of the gateway tree, the SeaweedFS tree and this client, and gateway peak RSS for one leg."""

    def __init__(self, gateway_pid: int, weed_pid: int) -> None:
        self.gateway_pid = gateway_pid
        self.weed_pid = weed_pid

    def measure(self, transfer: Callable[[float], float]) -> Leg:
        """`transfer(started)` does the work and returns its time to first byte (or 0)."""
        gateway0, weed0, client0 = cpu_seconds(self.gateway_pid), cpu_seconds(self.weed_pid), time.process_time()
        sampler = PeakRss(self.gateway_pid)
        started = time.perf_counter()
        ttfb = transfer(started)
        elapsed = time.perf_counter() - started
        peak = sampler.stop()
        return Leg(
            seconds=elapsed,
            ttfb=ttfb,
            gateway_cpu=cpu_seconds(self.gateway_pid) - gateway0,
            weed_cpu=cpu_seconds(self.weed_pid) - weed0,
            client_cpu=time.process_time() - client0,
            gateway_peak_rss=peak,
        )


def settle(weed_pid: int, timeout: float = 30.0) -> float:
    """Flush dirty pages and wait until SeaweedFS idles (under 5% of a core for 0.5 s); returns seconds waited.

    Without it a leg could pay for the previous leg's writeback or for background work SeaweedFS
    still does, which would bias whichever side goes second.
    """
    started = time.monotonic()
    os.sync()
    while time.monotonic() - started < timeout:
        before = cpu_seconds(weed_pid)
        time.sleep(0.5)
        if cpu_seconds(weed_pid) - before < 0.025:
            break
    return time.monotonic() - started


def fail(message: str) -> None:
    print(f"FAILED: {message}", file=sys.stderr)
    raise SystemExit(1)


def gateway_upload(port: int, target: str, source: Path, expected: str) -> Callable[[float], float]:
    def transfer(started: float) -> float:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600, blocksize=BLOCK)
        with open(source, "rb") as body:
            connection.request("PUT", target, body=body, headers={"Content-Length": str(source.stat().st_size)})
            response = connection.getresponse()
            answer = response.read()
        connection.close()
        if response.status != 200:
            fail(f"gateway upload: {response.status} {answer[:300]!r}")
        # The gateway computes no SHA-256 for an S3 multipart object unless asked (boto3 direct does
        # not either); the download leg verifies the stored bytes by SHA-256 and length.
        stored = json.loads(answer)
        if stored.get("file_size") != source.stat().st_size or stored.get("sha256") not in (None, expected):
            fail(f"gateway upload answered {stored}; expected {source.stat().st_size} bytes, sha256 {expected}")
        return 0.0

    return transfer


def direct_upload(client: Any, key: str, source: Path) -> Callable[[float], float]:
    config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=4, use_threads=True)

    def transfer(started: float) -> float:
        client.upload_file(str(source), BUCKET, key, Config=config)
        return 0.0

    return transfer


def gateway_download(port: int, target: str, size: int, expected: str) -> Callable[[float], float]:
    def transfer(started: float) -> float:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        connection.request("GET", target)
        response = connection.getresponse()
        if response.status != 200:
            fail(f"gateway download: {response.status} {response.read()[:300]!r}")
        digest = hashlib.sha256()
        first = response.read1(BLOCK)  # returns as soon as the first body bytes are in
        ttfb = time.perf_counter() - started
        digest.update(first)
        total = len(first)
        buffer = bytearray(BLOCK)
        view = memoryview(buffer)
        received = response.readinto(buffer)
        while received:
            digest.update(view[:received])
            total += received
            received = response.readinto(buffer)
        connection.close()
        if total != size or digest.hexdigest() != expected:
            fail(f"SHA-256 mismatch after gateway download: {digest.hexdigest()} ({total} of {size} bytes)")
        return ttfb

    return transfer


def direct_download(client: Any, key: str, size: int, expected: str) -> Callable[[float], float]:
    def transfer(started: float) -> float:
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"]
        digest = hashlib.sha256()
        first = body.read(1)  # one recv into urllib3's buffer: the first body bytes are in
        ttfb = time.perf_counter() - started
        digest.update(first)
        total = len(first)
        while chunk := body.read(BLOCK):
            digest.update(chunk)
            total += len(chunk)
        body.close()
        if total != size or digest.hexdigest() != expected:
            fail(f"SHA-256 mismatch after direct download: {digest.hexdigest()} ({total} of {size} bytes)")
        return ttfb

    return transfer


def empty_bucket(client: Any) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if objects:
            client.delete_objects(Bucket=BUCKET, Delete={"Objects": objects})
    for upload in client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
        client.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])


def tree_write_bytes(pid: int) -> int:
    """Sum of /proc/<pid>/io write_bytes over the process and its children (raises when unreadable)."""
    root = psutil.Process(pid)
    return sum(proc.io_counters().write_bytes for proc in [root, *root.children(recursive=True)])


def tree_rss(pid: int) -> int:
    root = psutil.Process(pid)
    return sum(proc.memory_info().rss for proc in [root, *root.children(recursive=True)])


def median(values: list[float]) -> float:
    return statistics.median(values)


def mib_s(size: int, legs: list[Leg]) -> float:
    return median([size / BLOCK / leg.seconds for leg in legs])


def per_gib(size: int, legs: list[Leg], what: str) -> float:
    return median([getattr(leg, what) / (size / GIB) for leg in legs])


def speed_ratio(gateway: list[Leg], direct: list[Leg]) -> float:
    """Median over runs of (gateway speed / direct speed), each run's pair measured back to back."""
    return median([d.seconds / g.seconds for g, d in zip(gateway, direct, strict=True)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="where the file and SeaweedFS data live")
    parser.add_argument("--gateway-arg", action="append", default=[], help="extra flag for serve (repeatable)")
    parser.add_argument(
        "--gateway-env", action="append", default=[], metavar="NAME=VALUE", help="extra gateway variable (repeatable)"
    )
    args = parser.parse_args()
    size = args.size_mib * BLOCK
    results = Results()

    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        work = Path(scratch)
        source = work / "source.bin"
        print(
            f"load average at start {os.getloadavg()[0]:.2f}; creating a {args.size_mib} MiB source file ...",
            file=sys.stderr,
        )
        expected = make_source(source, size)
        with seaweed_s3(work / "seaweed") as (server, weed):
            client = s3_client(server, pool=16)
            client.create_bucket(Bucket=BUCKET)
            env = {**server.env(), "ARTIFACT_GATEWAY_S3_ADDRESSING_STYLE": "path"}
            env.update(item.split("=", 1) for item in args.gateway_env)
            with run_gateway(
                work / "gateway", *args.gateway_arg, env=env, destination=f"s3://{BUCKET}/{PREFIX}"
            ) as gateway:
                pid = gateway.proc.pid
                idle_rss = tree_rss(pid)
                sampler = PeakRss(pid)
                meter = Meter(pid, weed.pid)
                log_before = gateway.log_path.stat().st_size
                try:
                    writes_before: int | None = tree_write_bytes(pid)
                    writes_note = ""
                except (psutil.Error, OSError) as exc:
                    writes_before, writes_note = None, f"/proc/{pid}/io unreadable: {exc!r}"

                settled = 0.0
                for run in range(args.runs):
                    warm = meter.measure(direct_upload(client, f"warmup/run{run}.bin", source))
                    print(f"run {run}: warm-up upload {size / BLOCK / warm.seconds:.0f} MiB/s", file=sys.stderr)
                    path = f"bench/run{run}/model.bin"
                    target = f"{ARTIFACTS}/{path}"
                    direct_key = f"direct/run{run}/model.bin"
                    uploads = [
                        (results.direct_up, direct_upload(client, direct_key, source)),
                        (results.gateway_up, gateway_upload(gateway.port, target, source, expected)),
                    ]
                    downloads = [
                        (results.gateway_down, gateway_download(gateway.port, target, size, expected)),
                        (results.direct_down, direct_download(client, direct_key, size, expected)),
                    ]
                    if run % 2:  # ABBA: alternate which side goes first
                        uploads.reverse()
                        downloads.reverse()
                    for legs, transfer in uploads + downloads:
                        settled += settle(weed.pid)
                        legs.append(meter.measure(transfer))
                    print(
                        f"run {run}: up gateway {size / BLOCK / results.gateway_up[-1].seconds:.0f} / "
                        f"direct {size / BLOCK / results.direct_up[-1].seconds:.0f} MiB/s, "
                        f"down gateway {size / BLOCK / results.gateway_down[-1].seconds:.0f} / "
                        f"direct {size / BLOCK / results.direct_down[-1].seconds:.0f} MiB/s, "
                        f"gateway ttfb {results.gateway_down[-1].ttfb * 1000:.1f} ms",
                        file=sys.stderr,
                    )
                    empty_bucket(client)

                if writes_before is not None:
                    writes_mib = f"{(tree_write_bytes(pid) - writes_before) / BLOCK:.2f}"
                    log_growth = gateway.log_path.stat().st_size - log_before
                    writes_note = f"includes the gateway's own log output, {log_growth / 1024:.1f} KiB"
                else:
                    writes_mib = "n/a"
                end_rss = tree_rss(pid)
                print(f"waited {settled:.1f} s in total for sync and an idle SeaweedFS before legs", file=sys.stderr)
                print(
                    f"load average at end {os.getloadavg()[0]:.2f} (2 cores; includes this benchmark)", file=sys.stderr
                )
                peak = sampler.stop()

    def row(label: str, value: str, target: str = "") -> None:
        print(f"| {label} | {value} | {target} |")

    flags = " ".join([*args.gateway_arg, *args.gateway_env]) or "defaults"
    print(f"| {args.size_mib} MiB, {args.runs} runs, gateway {flags}, SeaweedFS S3 | median | target |")
    print("| --- | --- | --- |")
    row("gateway upload MiB/s (one streamed PUT)", f"{mib_s(size, results.gateway_up):.0f}")
    row("boto3 direct upload MiB/s (upload_file, 8 MiB x 4)", f"{mib_s(size, results.direct_up):.0f}")
    up_ratio = speed_ratio(results.gateway_up, results.direct_up)
    row("upload ratio gateway / direct (per-run pairs)", f"{up_ratio:.2f}", ">= 0.9")
    row("gateway download MiB/s", f"{mib_s(size, results.gateway_down):.0f}")
    row("boto3 direct download MiB/s (get_object stream)", f"{mib_s(size, results.direct_down):.0f}")
    down_ratio = speed_ratio(results.gateway_down, results.direct_down)
    row("download ratio gateway / direct (per-run pairs)", f"{down_ratio:.2f}")
    row(
        "gateway download time to first byte, ms",
        f"{median([leg.ttfb * 1000 for leg in results.gateway_down]):.1f}",
        "< 100",
    )
    row("boto3 direct time to first byte, ms", f"{median([leg.ttfb * 1000 for leg in results.direct_down]):.1f}")
    row(
        "gateway RSS idle / peak / idle after, MiB",
        f"{idle_rss / BLOCK:.0f} / {peak / BLOCK:.0f} / {end_rss / BLOCK:.0f}",
        "flat, < 150",
    )
    row(
        "gateway peak RSS during upload / download legs, MiB",
        f"{max(leg.gateway_peak_rss for leg in results.gateway_up) / BLOCK:.0f} / "
        f"{max(leg.gateway_peak_rss for leg in results.gateway_down) / BLOCK:.0f}",
    )
    row("gateway local disk writes, MiB", writes_mib, "0")
    row("gateway CPU-s per GiB, upload", f"{per_gib(size, results.gateway_up, 'gateway_cpu'):.2f}")
    row("gateway CPU-s per GiB, download", f"{per_gib(size, results.gateway_down, 'gateway_cpu'):.2f}")
    row(
        "SeaweedFS CPU-s per GiB, upload via gateway / direct",
        f"{per_gib(size, results.gateway_up, 'weed_cpu'):.2f} / {per_gib(size, results.direct_up, 'weed_cpu'):.2f}",
    )
    row(
        "SeaweedFS CPU-s per GiB, download via gateway / direct",
        f"{per_gib(size, results.gateway_down, 'weed_cpu'):.2f} / {per_gib(size, results.direct_down, 'weed_cpu'):.2f}",
    )
    row(
        "client CPU-s per GiB, upload via gateway / direct",
        f"{per_gib(size, results.gateway_up, 'client_cpu'):.2f} / {per_gib(size, results.direct_up, 'client_cpu'):.2f}",
    )
    row(
        "client CPU-s per GiB, download via gateway / direct",
        f"{per_gib(size, results.gateway_down, 'client_cpu'):.2f} / "
        f"{per_gib(size, results.direct_down, 'client_cpu'):.2f}",
    )
    if writes_note:
        print(f"\nLocal disk writes: {writes_note}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
