"""Why the S3 adapter uses aiobotocore: event-loop stalls and throughput of three ways to call S3.

Uploads the same objects to a SeaweedFS server started here, three ways, while a probe task
measures how late the event loop wakes up (its lag): (1) boto3 called directly on the loop (what
a careless async server does), (2) boto3 in a worker thread (`asyncio.to_thread`), (3) aiobotocore.
Reports MiB/s and the loop's p50/p99/max lag. Not a test; run it by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import boto3
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.storage_servers import seaweed_s3

MIB = 1 << 20
CHECKSUMS = os.environ.get("CHECKSUMS", "when_supported")


async def probe(lags: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.005)
        lags.append(time.perf_counter() - started - 0.005)


async def measure(name: str, upload: Callable[[str, bytes], Awaitable[None]], payloads: list[bytes]) -> str:
    lags: list[float] = []
    stop = asyncio.Event()
    prober = asyncio.create_task(probe(lags, stop))
    started = time.perf_counter()
    await asyncio.gather(*(upload(f"{name}/{index}", data) for index, data in enumerate(payloads)))
    elapsed = time.perf_counter() - started
    stop.set()
    await prober
    lags.sort()
    total = sum(len(data) for data in payloads) / MIB
    p99 = lags[int(len(lags) * 0.99) - 1] if lags else 0.0
    return (
        f"| {name} | {total / elapsed:.0f} | {statistics.median(lags) * 1000:.1f} | {p99 * 1000:.1f} | "
        f"{lags[-1] * 1000:.0f} |"
    )


async def run(endpoint: str, key: str, secret: str, payloads: list[bytes]) -> list[str]:
    bucket = "choice"
    config = Config(s3={"addressing_style": "path"}, request_checksum_calculation=CHECKSUMS)
    sync = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=config,
    )
    sync.create_bucket(Bucket=bucket)

    async def blocking(name: str, data: bytes) -> None:
        sync.put_object(Bucket=bucket, Key=name, Body=data)

    async def threaded(name: str, data: bytes) -> None:
        await asyncio.to_thread(sync.put_object, Bucket=bucket, Key=name, Body=data)

    session = get_session()
    async with session.create_client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=AioConfig(s3={"addressing_style": "path"}),
    ) as client:
        native: Any = client

        async def aio(name: str, data: bytes) -> None:
            await native.put_object(Bucket=bucket, Key=name, Body=data)

        rows = []
        for _ in range(2):  # interleaved, second round reported (warm connections)
            rows = [
                await measure("boto3 on the loop", blocking, payloads),
                await measure("boto3 in threads", threaded, payloads),
                await measure("aiobotocore", aio, payloads),
            ]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=32)
    parser.add_argument("--object-mib", type=int, default=8)
    args = parser.parse_args()
    payloads = [os.urandom(args.object_mib * MIB) for _ in range(args.objects)]
    with tempfile.TemporaryDirectory() as scratch, seaweed_s3(Path(scratch)) as (server, _):
        rows = asyncio.run(run(server.endpoint, server.access_key, server.secret_key, payloads))
    print(
        f"| {args.objects} x {args.object_mib} MiB PutObject, all started at once | MiB/s | loop lag p50 ms | "
        "p99 ms | max ms |"
    )
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
