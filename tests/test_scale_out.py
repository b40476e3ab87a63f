"""Scale-out: replicas behind a load balancer, as deploy/ runs them.

Two gateways (tracking and artifacts) and a third in --artifacts-only mode share one PostgreSQL
database (migrated once beforehand, as the deployment's Job does) and one S3 bucket, and have the
same ARTIFACT_GATEWAY_SIGNING_KEY. A multipart upload is created on one, takes its parts on all
three at once and is completed on another; the stock MLflow client logs runs through both
tracking gateways at the same time, into the same runs too. Nothing may be lost or duplicated.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from tests.conftest import s3_client
from tests.gateway_process import RunningGateway, gateway_command, run_gateway
from tests.postgres_server import create_database
from tests.storage_servers import S3Server

MIB = 1 << 20
MPU = "/api/2.0/mlflow-artifacts/mpu"
SIGNING_KEY = "scale-out-" + "5c" * 24


@dataclass
class Cluster:
    a: RunningGateway  # tracking + artifacts
    b: RunningGateway  # tracking + artifacts
    c: RunningGateway  # --artifacts-only
    bucket: str
    s3: S3Server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server, postgres_dsn: str) -> Iterator[Cluster]:
    client = s3_client(s3_server)
    bucket = f"scale-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    store = create_database(postgres_dsn, f"scale_{uuid.uuid4().hex[:12]}")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ARTIFACT_GATEWAY_"))}
    # The deployment's migrate Job: once, before the replicas start.
    migrated = subprocess.run(
        gateway_command("migrate", "--backend-store-uri", store), env=clean, capture_output=True, text=True, timeout=60
    )
    assert migrated.returncode == 0, migrated.stderr
    env = {
        **s3_server.env(),
        "ARTIFACT_GATEWAY_S3_ADDRESSING_STYLE": "path",
        "ARTIFACT_GATEWAY_SIGNING_KEY": SIGNING_KEY,
    }
    destination = f"s3://{bucket}/root"
    root = tmp_path_factory.mktemp("scale-out")
    servers = {
        "a": run_gateway(root / "a", "--backend-store-uri", store, env=env, destination=destination),
        "b": run_gateway(root / "b", "--backend-store-uri", store, env=env, destination=destination),
        "c": run_gateway(root / "c", "--artifacts-only", env=env, destination=destination),
    }
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(3) as pool:
        # Started together, like replicas of a fresh rollout.
        started = {name: pool.submit(stack.enter_context, server) for name, server in servers.items()}
        running = {name: future.result() for name, future in started.items()}
        yield Cluster(running["a"], running["b"], running["c"], bucket, s3_server)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        if objects := [{"Key": item["Key"]} for item in page.get("Contents", [])]:
            client.delete_objects(Bucket=bucket, Delete={"Objects": objects})
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    client.delete_bucket(Bucket=bucket)


@pytest.fixture(autouse=True)
def no_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed request must fail the test, not be retried into a duplicate."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


def on(gateway: RunningGateway, url: str) -> str:
    """The same URL (path and signed token) sent to another replica, as a load balancer would."""
    parts = urlsplit(url)
    return parts._replace(netloc=f"127.0.0.1:{gateway.port}").geturl()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def log_lines(gateway: RunningGateway, fragment: str, status: int = 200) -> list[dict[str, object]]:
    return [
        line
        for line in gateway.log_lines()
        if fragment in str(line.get("path")) and line.get("status") == status and "method" in line
    ]


def test_multipart_upload_hops_between_replicas_and_assembles_once(cluster: Cluster) -> None:
    a, b, c = cluster.a, cluster.b, cluster.c
    directory = f"mpu-{uuid.uuid4().hex[:10]}"
    data = os.urandom(5 * 5 * MIB + 4321)  # five 5 MiB parts (S3's minimum) and a short last one
    chunks = [data[offset : offset + 5 * MIB] for offset in range(0, len(data), 5 * MIB)]
    assert len(chunks) == 6
    body = {"path": "/home/me/model.bin", "num_parts": len(chunks)}
    created = requests.post(f"{a.url}{MPU}/create/{directory}", json=body, timeout=60)
    assert created.status_code == 200, created.text
    upload_id = created.json()["upload_id"]
    credentials = sorted(created.json()["credentials"], key=lambda item: item["part_number"])
    assert all(urlsplit(item["url"]).port == a.port for item in credentials), "A issues URLs to itself"

    # A part URL signed by A, tampered with: B checks the signature rather than trusting the URL.
    url = credentials[0]["url"]
    token = parse_qs(urlsplit(url).query)["token"][0]
    forged = on(b, url.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB")))
    refused = requests.put(forged, data=chunks[0], timeout=60)
    assert (refused.status_code, refused.json()["error_code"]) == (403, "PERMISSION_DENIED")

    # Every part on a different replica than the one before it, all at once.
    replicas = [a, b, c, b, c, a]

    def send(index: int) -> tuple[int, str]:
        response = requests.put(on(replicas[index], credentials[index]["url"]), data=chunks[index], timeout=120)
        assert response.status_code == 200, response.text
        return credentials[index]["part_number"], response.headers["ETag"]

    with ThreadPoolExecutor(len(chunks)) as pool:
        parts = list(pool.map(send, range(len(chunks))))
    for gateway, expected in ((a, 2), (b, 2), (c, 2)):
        assert len(log_lines(gateway, "/mpu/part")) == expected, "each replica took its own parts"

    completed = requests.post(
        f"{b.url}{MPU}/complete/{directory}",
        json={
            "path": body["path"],
            "upload_id": upload_id,
            "parts": [{"part_number": number, "etag": etag} for number, etag in parts],
        },
        timeout=120,
    )
    assert completed.status_code == 200, completed.text
    assert len(log_lines(b, f"/mpu/complete/{directory}")) == 1
    assert not log_lines(a, f"/mpu/complete/{directory}") and not log_lines(c, f"/mpu/complete/{directory}")

    # The bucket holds the object once, whole, and no multipart upload is left open.
    s3 = s3_client(cluster.s3)
    key = f"root/{directory}/model.bin"
    stored = s3.get_object(Bucket=cluster.bucket, Key=key)["Body"].read()
    assert (len(stored), sha256(stored)) == (len(data), sha256(data))
    listed = s3.list_objects_v2(Bucket=cluster.bucket, Prefix=f"root/{directory}/")["Contents"]
    assert [item["Key"] for item in listed] == [key]
    assert [
        u for u in s3.list_multipart_uploads(Bucket=cluster.bucket).get("Uploads", []) if directory in u["Key"]
    ] == []
    # Every replica serves it, the artifacts-only one included.
    for gateway in (c, a, b):
        response = requests.get(gateway.artifact_url(f"{directory}/model.bin"), timeout=120)
        assert response.status_code == 200
        assert (int(response.headers["Content-Length"]), sha256(response.content)) == (len(data), sha256(data))
    # A completion sent again to another replica (a client retrying after a lost answer) does not
    # assemble anything a second time: the object stays whole.
    again = requests.post(
        f"{a.url}{MPU}/complete/{directory}",
        json={"path": body["path"], "upload_id": upload_id, "parts": [{"part_number": 1, "etag": parts[0][1]}]},
        timeout=60,
    )
    assert again.status_code in (200, 400, 404), again.text  # S3 answers a repeated completion with success
    stored = s3.get_object(Bucket=cluster.bucket, Key=key)["Body"].read()
    assert (len(stored), sha256(stored)) == (len(data), sha256(data))


THREADS_PER_GATEWAY = 3
RUNS_PER_THREAD = 3
STEPS = 20


def test_runs_logged_through_both_replicas_at_once_are_all_there_exactly_once(cluster: Cluster, tmp_path: Path) -> None:
    a, b = cluster.a, cluster.b
    replicas = {"a": a, "b": b}
    experiment_id = MlflowClient(a.url).create_experiment(f"scale-out-{uuid.uuid4().hex[:8]}")
    workers = [f"{name}{index}" for name in replicas for index in range(THREADS_PER_GATEWAY)]
    # One run that every thread writes through both replicas at the same moment: the same new
    # metric, param and tag keys, so the database sees concurrent first inserts and updates of one row.
    shared = MlflowClient(b.url).create_run(experiment_id).info.run_id
    together = threading.Barrier(len(workers), timeout=60)

    def work(worker: str) -> list[str]:
        try:
            return log_runs(worker)
        except BaseException:
            together.abort()  # the others stop waiting for this thread
            raise

    def log_runs(worker: str) -> list[str]:
        gateway = replicas[worker[0]]
        client = MlflowClient(tracking_uri=gateway.url)
        own = []
        for number in range(RUNS_PER_THREAD):
            run_id = client.create_run(experiment_id, tags={"worker": worker}).info.run_id
            client.log_param(run_id, "worker", worker)
            client.log_batch(
                run_id,
                params=[Param("number", str(number))],
                metrics=[Metric("loss", 1.0 / (step + 1), 1_000 + step, step) for step in range(STEPS)],
                tags=[RunTag("batch", "yes")],
            )
            for step in range(5):
                client.log_metric(run_id, "accuracy", step / 10, timestamp=2_000 + step, step=step)
            file = tmp_path / f"{run_id}.txt"
            file.write_text(f"artifact of {run_id} through {gateway.port}")
            client.log_artifact(run_id, str(file), "out")
            client.set_terminated(run_id)
            own.append(run_id)
            position = workers.index(worker)
            together.wait()
            for wave in range(2):
                step = wave * len(workers) + position
                client.log_metric(shared, f"race-{number}", float(step), timestamp=3_000 + step, step=step)
            client.log_batch(
                shared,
                metrics=[Metric(f"batched-{number}", float(position), 4_000 + position, position)],
                params=[Param(f"race-{number}", "same")],
                tags=[RunTag(f"race-{number}", "same")],
            )
        return own

    with ThreadPoolExecutor(len(workers)) as pool:
        futures = {worker: pool.submit(work, worker) for worker in workers}
    failures = [error for future in futures.values() if (error := future.exception()) is not None]
    if failures:  # the first real error, not a thread that stopped waiting because of it
        raise next((e for e in failures if not isinstance(e, threading.BrokenBarrierError)), failures[0])
    owned = {worker: future.result() for worker, future in futures.items()}
    expected = {run_id: worker for worker, runs in owned.items() for run_id in runs}
    assert len(expected) == len(workers) * RUNS_PER_THREAD

    for reader in (a, b):  # each replica sees everything, whoever wrote it
        client = MlflowClient(tracking_uri=reader.url)
        runs = client.search_runs([experiment_id], max_results=1000)
        ids = [run.info.run_id for run in runs]
        assert len(ids) == len(set(ids)) == len(expected) + 1
        assert set(ids) == {*expected, shared}
        for run in runs:
            if run.info.run_id == shared:
                continue
            worker = expected[run.info.run_id]
            assert run.info.status == "FINISHED"
            assert run.data.params["worker"] == worker and set(run.data.params) == {"worker", "number"}
            assert run.data.tags["worker"] == worker and run.data.tags["batch"] == "yes"
            assert run.data.metrics == {"loss": 1.0 / STEPS, "accuracy": 0.4}
            history = client.get_metric_history(run.info.run_id, "loss")
            assert sorted(m.step for m in history) == list(range(STEPS)), "every point once"
            assert len(client.get_metric_history(run.info.run_id, "accuracy")) == 5
            (artifact,) = client.list_artifacts(run.info.run_id, "out")
            assert artifact.path == f"out/{run.info.run_id}.txt"
        run = client.get_run(shared)
        for number in range(RUNS_PER_THREAD):
            for key, points in ((f"race-{number}", 2 * len(workers)), (f"batched-{number}", len(workers))):
                history = client.get_metric_history(shared, key)
                assert sorted(m.step for m in history) == list(range(points)), f"{key}: nothing lost, nothing twice"
                assert run.data.metrics[key] == float(points - 1), f"{key}: the latest is the highest step"
        races = {f"race-{number}" for number in range(RUNS_PER_THREAD)}
        assert run.data.params == dict.fromkeys(races, "same")
        assert {key: value for key, value in run.data.tags.items() if key in races} == dict.fromkeys(races, "same")

    # Artifacts went through the replica each thread used, into the one bucket; any replica reads them.
    s3 = s3_client(cluster.s3)
    keys = {
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=cluster.bucket, Prefix=f"root/{experiment_id}/")
        for item in page.get("Contents", [])
    }
    assert keys == {f"root/{experiment_id}/{run_id}/artifacts/out/{run_id}.txt" for run_id in expected}
    for name, gateway in replicas.items():
        written = {str(line["path"]) for line in gateway.log_lines() if line.get("method") == "PUT"}
        mine = {run_id for run_id, worker in expected.items() if worker[0] == name}
        assert {run_id for run_id in expected if any(run_id in path for path in written)} == mine
    for run_id, worker in expected.items():
        writer, other = (a, b) if worker[0] == "a" else (b, a)
        for reader in (other, cluster.c):
            response = requests.get(
                reader.artifact_url(f"{experiment_id}/{run_id}/artifacts/out/{run_id}.txt"), timeout=30
            )
            assert response.text == f"artifact of {run_id} through {writer.port}"
