"""The stock client's `log_artifact` of a large file on S3: the gateway's proxied parts against the rest.

Not a test; run it by hand (about 5 minutes with the defaults on this machine, at a load average of 10):

    .venv/bin/python benchmarks/s3_client_upload.py --size-mib 700 --rounds 3

Starts the test suite's S3 server (SeaweedFS) and, all storing in one bucket: the gateway with its
default `--multipart-upload proxy` (the client's 10 MiB parts go to the gateway, which passes each
on to S3), the gateway with `--multipart-upload direct` (presigned part URLs: the client puts the
parts straight into SeaweedFS), `mlflow server` (whose `mpu/create` answers presigned URLs too), each
with SQLite; then times `MlflowClient.log_artifact` of the same file against each, plus the floor:
boto3's own multipart upload of the file straight to SeaweedFS with the client's part size and
thread count. Rounds alternate the order; every stored object is read back and compared by SHA-256.
Prints per-round figures with the load average, the medians, and each server's CPU per round.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.large_file import cpu_seconds
from benchmarks.s3_large_file import settle
from benchmarks.versus_mlflow import mlflow_server_command, process, write_random
from tests.conftest import s3_client
from tests.gateway_process import run_gateway
from tests.storage_servers import S3Server, seaweed_s3

MIB = 1 << 20
BUCKET = "upload"
PART = 10 * MIB  # MLflow's client default (MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE)
THREADS = 4  # the client's pool on this 2-core machine: min(2 x cores, ...)


class Mismatch(SystemExit):
    pass


@dataclass
class Leg:
    name: str
    upload: Callable[[str], str]  # (round label) -> the S3 key it stored
    pid: int | None  # the server in the path, for its CPU


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def stored_sha256(client: Any, key: str) -> str:
    digest = hashlib.sha256()
    for chunk in client.get_object(Bucket=BUCKET, Key=key)["Body"].iter_chunks(8 * MIB):
        digest.update(chunk)
    return digest.hexdigest()


def client_leg(name: str, url: str, pid: int, prefix: str, source: Path) -> Leg:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url)
    experiment = client.create_experiment("bench")

    def upload(label: str) -> str:
        run = client.create_run(experiment, run_name=label)
        client.log_artifact(run.info.run_id, str(source), "large")
        location = run.info.artifact_uri.split(":", 1)[1].lstrip("/")  # mlflow-artifacts:/<exp>/<run>/artifacts
        return f"{prefix}/{location}/large/{source.name}"

    return Leg(name, upload, pid)


def boto3_leg(s3: S3Server, source: Path) -> Leg:
    from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]

    client = s3_client(s3, pool=THREADS)
    config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=THREADS)

    def upload(label: str) -> str:
        key = f"boto3/{label}/{source.name}"
        client.upload_file(str(source), BUCKET, key, Config=config)
        return key

    return Leg("boto3 direct (floor)", upload, None)


@contextlib.contextmanager
def servers(work: Path, s3: S3Server, source: Path, args: argparse.Namespace) -> Iterator[list[Leg]]:
    env = {**s3.env(), "ARTIFACT_GATEWAY_S3_ADDRESSING_STYLE": "path"}
    with contextlib.ExitStack() as stack:
        legs = []
        gateways: list[tuple[str, str, dict[str, str]]] = [
            ("gateway proxy", "proxy", {}),
            ("gateway direct", "direct", {}),
        ]
        if args.baseline_tree:
            gateways.append(("baseline proxy", "proxy", {"PYTHONPATH": str(args.baseline_tree)}))
        for name, mode, extra in gateways:
            prefix = name.replace(" ", "-")
            gateway = stack.enter_context(
                run_gateway(
                    work / prefix,
                    "--backend-store-uri",
                    f"sqlite:///{work / prefix}.db",
                    "--multipart-upload",
                    mode,
                    *args.gateway_arg,
                    env={**env, **extra},
                    destination=f"s3://{BUCKET}/{prefix}",
                )
            )
            legs.append(client_leg(name, gateway.url, gateway.proc.pid, prefix, source))
        if not args.no_mlflow:
            store = f"sqlite:///{work / 'mlflow.db'}"
            command = mlflow_server_command(f"s3://{BUCKET}/mlflow", store=store, workers=args.mlflow_workers)
            url, pid = stack.enter_context(process("mlflow", command, work, s3.env()))
            legs.append(client_leg("mlflow", url, pid, "mlflow", source))
        legs.append(boto3_leg(s3, source))
        yield legs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=700)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--mlflow-workers", type=int, default=4)
    parser.add_argument("--baseline-tree", type=Path, help="also a proxy gateway run from this source tree")
    parser.add_argument("--gateway-arg", action="append", default=[], help="extra flag for the gateways (repeatable)")
    args = parser.parse_args()
    os.environ.pop("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", None)
    os.environ["MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE"] = str(PART)
    samples: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="s3-client-upload-") as scratch:
        work = Path(scratch)
        source = work / "model.bin"
        expected = write_random(source, args.size_mib * MIB)
        with seaweed_s3(work / "seaweed") as (s3, weed):
            storage = s3_client(s3)
            storage.create_bucket(Bucket=BUCKET)
            with servers(work, s3, source, args) as legs:
                print(f"{args.size_mib} MiB, {PART // MIB} MiB parts, load {load()}", file=sys.stderr)
                for round_ in range(args.rounds):
                    order = legs[round_ % len(legs) :] + legs[: round_ % len(legs)]
                    for leg in order:
                        settle(weed.pid)
                        server0 = cpu_seconds(leg.pid) if leg.pid else 0.0
                        weed0 = cpu_seconds(weed.pid)
                        started = time.perf_counter()
                        key = leg.upload(f"round{round_}")
                        seconds = time.perf_counter() - started
                        server_cpu = cpu_seconds(leg.pid) - server0 if leg.pid else 0.0
                        weed_cpu = cpu_seconds(weed.pid) - weed0
                        if stored_sha256(storage, key) != expected:
                            raise Mismatch(f"{leg.name}: {key} differs from the source")
                        storage.delete_object(Bucket=BUCKET, Key=key)
                        samples.setdefault(leg.name, []).append(seconds)
                        cpu.setdefault(leg.name, []).append(server_cpu)
                        print(
                            f"round {round_} {leg.name:22} {seconds * 1000:7,.0f} ms  "
                            f"{args.size_mib / seconds:5.0f} MiB/s  server CPU {server_cpu:5.2f} s  "
                            f"SeaweedFS CPU {weed_cpu:5.2f} s  (load {load()})",
                            file=sys.stderr,
                        )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"\n`log_artifact` of {args.size_mib} MiB on S3, medians of {args.rounds} rounds, commit {commit}")
    print(f"load average at the end: {load()}")
    print("| path | median ms | per round, ms | MiB/s | server CPU-s (median) |")
    print("| --- | --- | --- | --- | --- |")
    for name, times in samples.items():
        median = statistics.median(times)
        rounds = ", ".join(f"{value * 1000:,.0f}" for value in times)
        cpu_text = f"{statistics.median(cpu[name]):.2f}" if any(cpu[name]) else ""
        print(f"| {name} | {median * 1000:,.0f} | {rounds} | {args.size_mib / median:.0f} | {cpu_text} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
