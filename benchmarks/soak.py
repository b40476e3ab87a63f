"""Soak: many clients uploading, downloading and listing at once, some vanishing mid-transfer.

Not a test: run it by hand (`.venv/bin/python benchmarks/soak.py --seconds 120`). It starts one
gateway (local disk by default, `--backend s3` for the test suite's S3 server), warms it up, then
runs `--clients` concurrent clients for `--seconds`: each repeatedly uploads a random-size object
(1 KiB to 4 MiB), downloads one it stored before, or lists a directory, and with probability
`--disconnect` drops the connection part-way through an upload or a download. Afterwards it checks
that every completed upload reads back byte-identical, and that the gateway is back where it
started: RSS within 10 % of the warmed-up idle figure, the same number of open file descriptors, no
staging file and no open multipart upload left. Exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.conftest import s3_client
from tests.gateway_process import ARTIFACTS, run_gateway
from tests.storage_servers import seaweed_s3

KIB, MIB = 1 << 10, 1 << 20
BUCKET = "soak"


class Dropped(Exception):
    """Raised by an upload body to make the client drop the connection mid-transfer."""


async def body(data: bytes, stop_at: int | None) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), 64 * KIB):
        if stop_at is not None and offset >= stop_at:
            raise Dropped
        yield data[offset : offset + 64 * KIB]
        await asyncio.sleep(0)


class Soak:
    def __init__(self, base: str, seconds: float, clients: int, disconnect: float, seed: int) -> None:
        self.base = base
        self.deadline = time.monotonic() + seconds
        self.clients = clients
        self.disconnect = disconnect
        self.random = random.Random(seed)
        self.stored: dict[str, str] = {}  # path -> sha256 of what a completed upload stored
        self.counts: dict[str, int] = {}
        self.failures: list[str] = []
        self.serial = itertools.count()

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    async def upload(self, session: aiohttp.ClientSession, client: int) -> None:
        size = self.random.choice([KIB, 16 * KIB, 256 * KIB, MIB, 4 * MIB]) + self.random.randrange(KIB)
        data = os.urandom(size)
        path = f"soak/c{client % 8}/o{next(self.serial)}.bin"  # never reused: no overwrite races
        drop = self.random.random() < self.disconnect
        headers = {"Content-Length": str(size)}
        try:
            stop_at = self.random.randrange(size) if drop else None
            async with session.put(f"{self.base}/{path}", data=body(data, stop_at), headers=headers) as response:
                await response.read()
                if response.status != 200:
                    self.failures.append(f"PUT {path}: {response.status}")
                    return
            self.stored[path] = hashlib.sha256(data).hexdigest()
            self.count("upload")
        except (Dropped, aiohttp.ClientError):
            self.count("upload dropped")

    async def download(self, session: aiohttp.ClientSession) -> None:
        if not self.stored:
            return
        path = self.random.choice(sorted(self.stored))
        drop = self.random.random() < self.disconnect
        async with session.get(f"{self.base}/{path}") as response:
            if response.status != 200:
                self.failures.append(f"GET {path}: {response.status}")
                return
            digest = hashlib.sha256()
            async for chunk in response.content.iter_chunked(64 * KIB):
                digest.update(chunk)
                if drop:
                    response.close()  # drop the connection with most of the body unread
                    self.count("download dropped")
                    return
            if digest.hexdigest() != self.stored[path]:
                self.failures.append(f"GET {path}: wrong bytes")
            self.count("download")

    async def listing(self, session: aiohttp.ClientSession, client: int) -> None:
        directory = f"soak/c{client % 8}"
        url = self.base.replace("/artifacts", f"/artifacts?path={directory}")
        async with session.get(url) as response:
            await response.read()
            if response.status != 200:
                self.failures.append(f"list {directory}: {response.status}")
            self.count("list")

    async def client(self, client: int) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            while time.monotonic() < self.deadline:
                action = self.random.random()
                try:
                    if action < 0.45:
                        await self.upload(session, client)
                    elif action < 0.85:
                        await self.download(session)
                    else:
                        await self.listing(session, client)
                except aiohttp.ClientError as exc:
                    self.failures.append(f"client {client}: {exc!r}")

    async def run(self) -> None:
        await asyncio.gather(*(self.client(number) for number in range(self.clients)))

    async def verify(self) -> None:
        async with aiohttp.ClientSession() as session:
            for path, sha in sorted(self.stored.items()):
                async with session.get(f"{self.base}/{path}") as response:
                    if hashlib.sha256(await response.read()).hexdigest() != sha:
                        self.failures.append(f"after the soak, {path} does not read back")


def rss_mib(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / MIB


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def pooled_storage_connections(pid: int, storage_port: int | None) -> int:
    """Keep-alive connections to the storage server: the SDK's bounded pool, not leaked descriptors."""
    if storage_port is None:
        return 0
    connections = psutil.Process(pid).net_connections(kind="tcp")
    return sum(1 for c in connections if c.raddr and c.raddr.port == storage_port)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--disconnect", type=float, default=0.1, help="share of transfers dropped part-way")
    parser.add_argument("--backend", choices=["local", "s3"], default="local")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as scratch, contextlib.ExitStack() as stack:
        work = Path(scratch)
        env: dict[str, str] = {}
        destination: Path | str = work / "artifacts"
        client: Any = None
        storage_port: int | None = None
        if args.backend == "s3":
            server, _ = stack.enter_context(seaweed_s3(work / "seaweed"))
            client = s3_client(server)
            client.create_bucket(Bucket=BUCKET)
            env = {**server.env(), "ARTIFACT_GATEWAY_S3_ADDRESSING_STYLE": "path"}
            destination = f"s3://{BUCKET}/root"
            storage_port = int(server.endpoint.rsplit(":", 1)[1])
        # Enough upload slots for every client: the soak is about leaks, not about refusals.
        gateway = stack.enter_context(
            run_gateway(work / "gw", "--max-concurrent-uploads", str(args.clients), env=env, destination=destination)
        )
        pid = gateway.proc.pid
        base = f"{gateway.url}{ARTIFACTS}"
        warm = Soak(base, 5, 8, 0.0, args.seed)
        asyncio.run(warm.run())
        time.sleep(1)
        start_rss = rss_mib(pid)
        start_fds = open_fds(pid) - pooled_storage_connections(pid, storage_port)
        peak = start_rss
        soak = Soak(base, args.seconds, args.clients, args.disconnect, args.seed + 1)
        print(f"soaking {args.clients} clients for {args.seconds:g} s on {args.backend} ...", file=sys.stderr)

        async def soak_and_sample() -> None:
            nonlocal peak
            task = asyncio.ensure_future(soak.run())
            while not task.done():
                peak = max(peak, rss_mib(pid))
                await asyncio.sleep(0.2)
            await task

        asyncio.run(soak_and_sample())
        time.sleep(8)  # let dropped requests finish their cleanup, and the idle worker return memory

        asyncio.run(soak.verify())
        pooled = pooled_storage_connections(pid, storage_port)
        end_rss, end_fds = rss_mib(pid), open_fds(pid) - pooled
        staging = work / "artifacts" / ".artifact-gateway-staging"
        leftovers = [p.name for p in staging.glob("*.part")] if args.backend == "local" else []
        open_uploads = client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) if client else []
    checks = [
        (
            f"RSS back within 10%: start {start_rss:.1f}, end {end_rss:.1f}, peak {peak:.1f} MiB",
            end_rss <= 1.1 * start_rss,
        ),
        (
            f"open file descriptors besides pooled storage connections ({pooled}, at most 64): "
            f"start {start_fds}, end {end_fds}",
            end_fds <= start_fds and pooled <= 64,
        ),
        (f"staging files left: {len(leftovers)}", not leftovers),
        (f"open multipart uploads left: {len(open_uploads)}", not open_uploads),
        (f"failures: {len(soak.failures)} {soak.failures[:5]}", not soak.failures),
    ]
    print(f"operations: {dict(sorted(soak.counts.items()))}")
    for line, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {line}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
