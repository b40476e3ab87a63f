"""Where the tail of small S3 uploads comes from: the gateway against SeaweedFS itself, in one run.

Not a test; run it by hand (about 8 minutes with the defaults on this machine, checking included):

    .venv/bin/python benchmarks/s3_small_tail.py --rounds 3

Starts the test suite's S3 server (SeaweedFS), the gateway (`--artifacts-only`, one worker, on S3)
and `mlflow server --artifacts-only --workers 4` on S3, then uploads the same `--files` x `--kib` KiB
blobs with `--concurrency` in flight, every round each of these in turn (order rotating):

  * `direct`: PutObject straight to SeaweedFS with the gateway's own S3 client (aiobotocore, the
    gateway's client configuration, the same CRC32 header): the floor, SeaweedFS's own tail;
  * `adapter`: the gateway's S3 adapter (`S3Repository.put`) in this process, no HTTP: what the
    gateway's storage side adds to a PutObject (the file/folder collision check);
  * `gateway`: PUTs to the gateway over HTTP (aiohttp, as `benchmarks/versus_mlflow.py` sends them);
  * `mlflow`: the same PUTs to `mlflow server`;
  * `baseline` (with `--baseline-tree DIR`): the gateway run from another source tree, for an A/B.

Prints files/s and p50/p90/p99/max latency per leg and round, and the medians over the rounds.
Every object is read back from the bucket and compared by SHA-256 after each round.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.large_file import cpu_seconds
from benchmarks.versus_mlflow import bounded, environment, mlflow_server_command, percentile, process
from repositories import ArtifactPath
from repositories.options import S3Options
from repositories.s3 import S3Repository
from tests.conftest import s3_client
from tests.gateway_process import ARTIFACTS, run_gateway
from tests.storage_servers import S3Server, seaweed_s3

BUCKET = "tail"
LEGS = ("direct", "adapter", "gateway", "mlflow")


class Mismatch(SystemExit):
    pass


def env_for(s3: S3Server) -> dict[str, str]:
    return {**s3.env(), "ARTIFACT_GATEWAY_S3_ADDRESSING_STYLE": "path"}


async def timed_all(jobs: list[Callable[[], Awaitable[None]]], in_flight: int) -> tuple[float, list[float]]:
    """(seconds for all, each job's seconds), at most `in_flight` at once."""

    async def one(job: Callable[[], Awaitable[None]]) -> float:
        started = time.perf_counter()
        await job()
        return time.perf_counter() - started

    started = time.perf_counter()
    latencies = await bounded([functools.partial(one, job) for job in jobs], in_flight)
    return time.perf_counter() - started, latencies


async def http_leg(base: str, prefix: str, blobs: list[bytes], in_flight: int) -> tuple[float, list[float]]:
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def put(index: int) -> None:
            url = f"{base}{ARTIFACTS}/{prefix}/small/{index}.bin"
            headers = {"Content-Type": "application/octet-stream"}
            async with session.put(url, data=blobs[index], headers=headers) as response:
                answer = await response.read()
                if response.status != 200:
                    raise Mismatch(f"PUT {url}: {response.status} {answer[:300]!r}")

        return await timed_all([functools.partial(put, i) for i in range(len(blobs))], in_flight)


async def single(data: bytes) -> Any:
    yield data


async def repository_leg(
    repository: S3Repository, prefix: str, blobs: list[bytes], in_flight: int, *, adapter: bool
) -> tuple[float, list[float]]:
    async def put(index: int) -> None:
        path = ArtifactPath((prefix, "small", f"{index}.bin"))
        if adapter:
            await repository.put(path, single(blobs[index]), content_length=len(blobs[index]))
            return
        integrity = await asyncio.to_thread(repository._integrity, _part(blobs[index]))
        await repository.client.put_object(
            Bucket=repository.bucket, Key=repository.key(path), Body=blobs[index], **integrity
        )

    return await timed_all([functools.partial(put, i) for i in range(len(blobs))], in_flight)


def _part(data: bytes) -> Any:
    from repositories.parts import Part

    return Part(data)


def verify(client: Any, owner: str, prefix: str, digests: list[str]) -> None:
    for index, expected in enumerate(digests):
        body = client.get_object(Bucket=BUCKET, Key=f"{owner}/{prefix}/small/{index}.bin")["Body"].read()
        if hashlib.sha256(body).hexdigest() != expected:
            raise Mismatch(f"{owner}/{prefix}/small/{index}.bin differs from what was sent")


def summary(seconds: float, latencies: list[float], cpu: float, weed_cpu: float) -> dict[str, float]:
    return {
        "files_s": len(latencies) / seconds,
        "cpu_ms": cpu / len(latencies) * 1000,
        "weed_cpu_ms": weed_cpu / len(latencies) * 1000,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p90_ms": percentile(latencies, 0.9) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000,
    }


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


async def run_rounds(
    s3: S3Server, weed: int, servers: dict[str, tuple[str, int]], blobs: list[bytes], args: argparse.Namespace
) -> dict[str, list[dict[str, float]]]:
    """`servers`: name -> (url, pid); the S3 client's CPU is this process's for the in-process legs."""
    options = S3Options(addressing_style="path", endpoint_url=s3.endpoint)
    repository = S3Repository(BUCKET, "direct", options)
    adapter = S3Repository(BUCKET, "adapter", options)
    with environment(**env_for(s3)):  # the credentials, read when the client is made
        await repository.start()
        await adapter.start()
    legs: dict[str, Callable[[str], Awaitable[tuple[float, list[float]]]]] = {
        "direct": lambda prefix: repository_leg(repository, prefix, blobs, args.concurrency, adapter=False),
        "adapter": lambda prefix: repository_leg(adapter, prefix, blobs, args.concurrency, adapter=True),
    }
    for name, (url, _) in servers.items():
        legs[name] = functools.partial(http_leg, url, blobs=blobs, in_flight=args.concurrency)
    own = os.getpid()
    # Unmeasured: a first object in every owner's prefix (the bucket's first PUT allocates a volume),
    # and the lazy imports of each server.
    for leg in legs.values():
        await leg("warmup")
    names = list(legs)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    try:
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                pid = servers[name][1] if name in servers else own
                cpu, weed_cpu = cpu_seconds(pid), cpu_seconds(weed)
                seconds, latencies = await legs[name](f"round{round_}")
                cpu, weed_cpu = cpu_seconds(pid) - cpu, cpu_seconds(weed) - weed_cpu
                figures = summary(seconds, latencies, cpu, weed_cpu)
                results[name].append(figures)
                print(
                    f"round {round_} {name:8} {figures['files_s']:6.0f} files/s  p50 {figures['p50_ms']:6.1f}  "
                    f"p90 {figures['p90_ms']:6.1f}  p99 {figures['p99_ms']:7.1f}  max {figures['max_ms']:7.1f} ms  "
                    f"CPU-ms/upload {figures['cpu_ms']:.2f} + SeaweedFS {figures['weed_cpu_ms']:.2f}  (load {load()})",
                    file=sys.stderr,
                )
    finally:
        await repository.close()
        await adapter.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--kib", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-tree", type=Path, help="also a gateway run from this source tree ('baseline')")
    parser.add_argument("--no-mlflow", action="store_true", help="leave `mlflow server` out")
    parser.add_argument("--mlflow-workers", type=int, default=4)
    parser.add_argument("--gateway-arg", action="append", default=[], help="extra flag for the gateway (repeatable)")
    args = parser.parse_args()
    blobs = [os.urandom(args.kib * 1024) for _ in range(args.files)]
    digests = [hashlib.sha256(blob).hexdigest() for blob in blobs]
    with tempfile.TemporaryDirectory(prefix="s3-small-tail-") as scratch, contextlib.ExitStack() as stack:
        work = Path(scratch)
        s3, weed = stack.enter_context(seaweed_s3(work / "seaweed"))
        client = s3_client(s3)
        client.create_bucket(Bucket=BUCKET)
        gateway = stack.enter_context(
            run_gateway(
                work / "gateway",
                "--artifacts-only",
                *args.gateway_arg,
                env=env_for(s3),
                destination=f"s3://{BUCKET}/gateway",
            )
        )
        servers = {"gateway": (gateway.url, gateway.proc.pid)}
        if args.baseline_tree:  # the same gateway built from another source tree, for an A/B in one run
            baseline = stack.enter_context(
                run_gateway(
                    work / "baseline",
                    "--artifacts-only",
                    *args.gateway_arg,
                    env={**env_for(s3), "PYTHONPATH": str(args.baseline_tree)},
                    destination=f"s3://{BUCKET}/baseline",
                )
            )
            servers["baseline"] = (baseline.url, baseline.proc.pid)
        if not args.no_mlflow:
            command = mlflow_server_command(f"s3://{BUCKET}/mlflow", workers=args.mlflow_workers)
            servers["mlflow"] = stack.enter_context(process("mlflow", command, work, env_for(s3)))
        print(f"{args.files} x {args.kib} KiB, {args.concurrency} in flight, load {load()}", file=sys.stderr)
        results = asyncio.run(run_rounds(s3, weed.pid, servers, blobs, args))
        for name in results:
            for round_ in range(args.rounds):
                verify(client, name, f"round{round_}", digests)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"\nmedians of {args.rounds} rounds, commit {commit}, load average at the end {load()}")
    print("| leg | files/s | p50 ms | p90 ms | p99 ms | max ms (worst round) | CPU-ms per upload: server / SeaweedFS |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    keys = ("files_s", "p50_ms", "p90_ms", "p99_ms", "cpu_ms", "weed_cpu_ms")
    for name, rounds in results.items():
        rate, p50, p90, p99, cpu, weed_cpu = (statistics.median(r[key] for r in rounds) for key in keys)
        worst = max(r["max_ms"] for r in rounds)
        print(
            f"| {name} | {rate:,.0f} | {p50:.1f} | {p90:.1f} | {p99:.1f} | {worst:,.0f} | {cpu:.2f} / {weed_cpu:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
