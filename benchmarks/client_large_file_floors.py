"""The floors of a large file: the stock client's own download loop, a durable write, and this machine's
fresh memory, beside the gateway and `mlflow server`.

`mlflow.artifacts.download_artifacts` of a file through a tracking server ends in the client's
`HttpArtifactRepository._download_file`: one streamed GET, read by `requests` in 1 MiB chunks and
written to the file. This times that same function (the client's own code, nothing reimplemented)
against `benchmarks/ceiling_server.py` (aiohttp's `FileResponse`, sendfile, no other work), the
gateway (local disk, SQLite, defaults) and stock `mlflow server` (proxied, SQLite, local disk), in
alternated rounds, every byte checked by SHA-256. The ceiling's time is the floor of any server: a
server's time over it is its own share. For uploads it also times the durable write of the same file
(a copy and an `fsync`, what a server that answers only once the bytes are on disk does at least, as
the gateway does by default; MLflow does not fsync).

And the machine's own floor: this benchmark machine is a virtual machine that hands freed memory
back to its host (free page reporting), so memory touched again after a few seconds is faulted in
from the host at a fraction of its usual speed. A leg that writes N GiB into new page cache (the
client's downloaded file, a server's stored file or temporary copy) pays that when the memory was
released before it, as it is in the client bench between legs. `fresh memory` times filling N GiB of
new anonymous memory in that state (numpy, one memset), `reused memory` the same at once after
freeing it. With `--release-seconds` (default 15) every leg starts after that long idle, the state
the client bench's legs start in; 0 measures with warm memory instead. Not a test; about
1.5 minutes per GiB and round:

    PYTHONPATH=$PWD .venv/bin/python benchmarks/client_large_file_floors.py --gib 5 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.versus_mlflow import mlflow_server_command, process, settle, write_random  # noqa: E402
from tests.gateway_process import ARTIFACTS, run_gateway  # noqa: E402

NAME = "huge.bin"


def client_download(base_url: str, out: Path) -> float:
    """Seconds the stock client's own download loop takes to fetch `NAME` from `base_url` into `out`."""
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

    repo = HttpArtifactRepository(f"{base_url}{ARTIFACTS}/bench")
    settle()
    started = time.perf_counter()
    repo._download_file(NAME, str(out))
    return time.perf_counter() - started


def durable_write(source: Path, target: Path) -> float:
    """Seconds to copy `source` to `target` and flush it to the disk: the floor of a durable upload."""
    settle()
    started = time.perf_counter()
    with open(source, "rb") as reader, open(target, "wb") as out:
        shutil.copyfileobj(reader, out, 1 << 22)
        out.flush()
        os.fsync(out.fileno())
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def memory_fill(size: int) -> tuple[float, float]:
    """Seconds to fill `size` bytes of new memory, then the same again at once (pages freed and reused)."""
    import numpy as np

    timings = []
    for _ in range(2):
        started = time.perf_counter()
        block = np.ones(size, dtype=np.uint8)
        timings.append(time.perf_counter() - started)
        del block
    return timings[0], timings[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=5.0, help="size of the file (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    parser.add_argument(
        "--release-seconds",
        type=float,
        default=15.0,
        help="idle time before each leg, so that freed memory goes back to the host (default 15; 0: warm memory)",
    )
    parser.add_argument("--workdir", type=Path, help="scratch space (default: system temp)")
    args = parser.parse_args()
    size = int(args.gib * (1 << 30))

    def release() -> None:
        settle()
        time.sleep(args.release_seconds)

    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="download-floor-") as scratch:
        work = Path(scratch)
        sources = work / "sources"
        sources.mkdir()
        expected = write_random(sources / NAME, size)
        with contextlib.ExitStack() as stack:
            ceiling = [sys.executable, str(ROOT / "benchmarks" / "ceiling_server.py"), "--root", str(sources)]
            ceiling_url, _ = stack.enter_context(process("ceiling", ceiling, work, {}))
            gateway = stack.enter_context(
                run_gateway(
                    work / "gateway",
                    "--backend-store-uri",
                    f"sqlite:///{work / 'gateway.db'}",
                    destination=work / "gateway-artifacts",
                )
            )
            mlflow = mlflow_server_command(work / "mlflow-artifacts", store=f"sqlite:///{work / 'mlflow.db'}")
            mlflow_url, _ = stack.enter_context(process("mlflow", mlflow, work, {}))
            servers = {"ceiling": ceiling_url, "gateway": gateway.url, "mlflow": mlflow_url}
            for url in (gateway.url, mlflow_url):
                with open(sources / NAME, "rb") as body:
                    requests.put(f"{url}{ARTIFACTS}/bench/{NAME}", data=body, timeout=600).raise_for_status()
            seconds: dict[str, list[float]] = {
                name: [] for name in [*servers, "durable write", "fresh memory", "reused memory"]
            }
            for round_ in range(args.rounds):
                release()
                fresh, reused = memory_fill(size)
                seconds["fresh memory"].append(fresh)
                seconds["reused memory"].append(reused)
                release()
                seconds["durable write"].append(durable_write(sources / NAME, work / "durable.out"))
                order = list(servers) if round_ % 2 == 0 else list(servers)[::-1]
                for name in order:
                    out = work / f"{name}.out"
                    release()
                    seconds[name].append(client_download(servers[name], out))
                    if sha256_of(out) != expected:
                        raise SystemExit(f"{name}: the downloaded bytes differ from the source")
                    out.unlink()
                print(
                    f"round {round_}: " + ", ".join(f"{name} {values[-1]:.2f} s" for name, values in seconds.items()),
                    file=sys.stderr,
                    flush=True,
                )
    gib = size / (1 << 30)
    print(f"{gib:g} GiB, {args.rounds} rounds, each leg after {args.release_seconds:g} s idle:")
    for name, values in seconds.items():
        median = statistics.median(values)
        runs = ", ".join(f"{value:.2f}" for value in values)
        print(f"  {name}: median {median:.2f} s ({gib / median * 1024:,.0f} MiB/s); rounds {runs}")
    floor = statistics.median(seconds["ceiling"])
    mlflow = statistics.median(seconds["mlflow"])
    gateway = statistics.median(seconds["gateway"])
    print(f"  over the floor (the ceiling): gateway {gateway / floor:.2f}x, MLflow {mlflow / floor:.2f}x")
    print(f"  gateway vs MLflow {mlflow / gateway:.2f}x; the most any server could reach here {mlflow / floor:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
