"""Prometheus metrics at GET /metrics: exact counts from real transfers, bounded labels, all workers summed."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import requests
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import s3_client
from tests.gateway_process import ARTIFACTS, RunningGateway, run_gateway
from tests.storage_servers import S3Server

MIB = 1 << 20
ARTIFACT_ROUTE = "/api/2.0/mlflow-artifacts/artifacts/{path}"
MPU = "/api/2.0/mlflow-artifacts/mpu"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(gateway: RunningGateway) -> Samples:
    """Every sample of one scrape, keyed by sample name and sorted labels."""
    response = requests.get(f"{gateway.url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def requests_total(samples: Samples, method: str, status: int, route: str = ARTIFACT_ROUTE) -> float:
    return value(samples, "artifact_gateway_requests_total", method=method, route=route, status=str(status))


def wait_for(gateway: RunningGateway, condition: Callable[[Samples], bool], timeout: float = 20.0) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(gateway)
        if condition(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


def in_flight(samples: Samples, direction: str) -> float:
    return value(samples, "artifact_gateway_transfers_in_flight", direction=direction)


def test_uploads_and_downloads_move_counters_bytes_and_histogram_exactly(
    gateway: RunningGateway, fresh_dir: str
) -> None:
    sizes = [1, 4096, 3 * MIB + 5]
    blobs = [os.urandom(size) for size in sizes]
    before = scrape(gateway)
    for index, data in enumerate(blobs):
        assert requests.put(gateway.artifact_url(f"{fresh_dir}/f{index}.bin"), data=data, timeout=30).status_code == 200
    for index, data in enumerate(blobs):
        response = requests.get(gateway.artifact_url(f"{fresh_dir}/f{index}.bin"), timeout=30)
        assert (response.status_code, response.content) == (200, data)
    ranged = requests.get(gateway.artifact_url(f"{fresh_dir}/f2.bin"), headers={"Range": "bytes=10-19"}, timeout=30)
    assert (ranged.status_code, ranged.content) == (206, blobs[2][10:20])
    assert requests.head(gateway.artifact_url(f"{fresh_dir}/f1.bin"), timeout=30).status_code == 200
    assert requests.get(gateway.artifact_url(f"{fresh_dir}/missing.bin"), timeout=30).status_code == 404
    after = scrape(gateway)

    def moved(method: str, status: int) -> float:
        return requests_total(after, method, status) - requests_total(before, method, status)

    assert [moved("PUT", 200), moved("GET", 200), moved("GET", 206), moved("HEAD", 200), moved("GET", 404)] == [
        3,
        3,
        1,
        1,
        1,
    ]
    assert delta(before, after, "artifact_gateway_bytes_received_total", backend="local") == sum(sizes)
    assert delta(before, after, "artifact_gateway_bytes_sent_total", backend="local") == sum(sizes) + 10
    assert delta(before, after, "artifact_gateway_backend_errors_total", backend="local", kind="NotFound") == 1
    histogram = "artifact_gateway_request_duration_seconds"
    for method, count in (("PUT", 3), ("GET", 5), ("HEAD", 1)):
        labels = {"method": method, "route": ARTIFACT_ROUTE}
        assert delta(before, after, f"{histogram}_count", **labels) == count
        assert delta(before, after, f"{histogram}_bucket", le="+Inf", **labels) == count
        assert delta(before, after, f"{histogram}_bucket", le="600.0", **labels) == count
        assert delta(before, after, f"{histogram}_sum", **labels) > 0
    assert in_flight(after, "upload") == in_flight(after, "download") == 0


def test_route_labels_are_templates_and_random_paths_add_no_series(gateway: RunningGateway) -> None:
    def random_traffic() -> str:
        name = uuid.uuid4().hex
        requests.put(gateway.artifact_url(f"{name}/x.txt"), data=b"x", timeout=30)
        requests.get(gateway.artifact_url(f"{name}/x.txt"), timeout=30)
        requests.get(gateway.artifact_url(f"{name}/absent.txt"), timeout=30)
        requests.get(f"{gateway.url}/no/such/{name}", timeout=30)
        requests.get(f"{gateway.url}{ARTIFACTS}", params={"path": name}, timeout=30)
        gateway.raw_request("PROPFIND", f"/health?{name}")  # a method no route has, on a known path: 405
        return name

    first = random_traffic()
    series = {key for key in scrape(gateway) if key[0] == "artifact_gateway_requests_total"}
    second = random_traffic()
    after = scrape(gateway)
    assert {key for key in after if key[0] == "artifact_gateway_requests_total"} == series
    routes = {dict(labels)["route"] for name, labels in after if "route" in dict(labels)}
    assert {ARTIFACT_ROUTE, "/api/2.0/mlflow-artifacts/artifacts", "unmatched", "/metrics"} <= routes
    assert all(route == "unmatched" or route.startswith("/") for route in routes)
    assert not [route for route in routes if first in route or second in route]
    methods = {dict(labels)["method"] for name, labels in after if "method" in dict(labels)}
    assert "PROPFIND" not in methods
    assert "other" in methods
    assert requests_total(after, "GET", 404, route="unmatched") >= 2
    assert requests_total(after, "other", 405, route="unmatched") >= 2


def test_multipart_open_gauge_follows_create_complete_and_abort(gateway: RunningGateway, fresh_dir: str) -> None:
    gauge = "artifact_gateway_multipart_uploads_open"

    def create(name: str) -> Any:
        response = requests.post(
            f"{gateway.url}{MPU}/create/{fresh_dir}", json={"path": f"/home/me/{name}", "num_parts": 2}, timeout=30
        )
        assert response.status_code == 200, response.text
        return response.json()

    start = value(scrape(gateway), gauge)
    kept, dropped = create("kept.bin"), create("dropped.bin")
    assert value(scrape(gateway), gauge) == start + 2
    chunks = [os.urandom(MIB), os.urandom(1234)]
    parts = []
    before_parts = scrape(gateway)
    for credential, chunk in zip(kept["credentials"], chunks, strict=True):
        response = requests.put(credential["url"], data=chunk, timeout=30)
        assert response.status_code == 200
        parts.append({"part_number": credential["part_number"], "etag": response.headers["ETag"]})
    after_parts = scrape(gateway)
    assert delta(before_parts, after_parts, "artifact_gateway_bytes_received_total", backend="local") == MIB + 1234
    parts_put = [requests_total(samples, "PUT", 200, f"{MPU}/part") for samples in (before_parts, after_parts)]
    assert parts_put[1] - parts_put[0] == 2
    assert value(after_parts, gauge) == start + 2
    done = requests.post(
        f"{gateway.url}{MPU}/complete/{fresh_dir}",
        json={"path": "/home/me/kept.bin", "upload_id": kept["upload_id"], "parts": parts},
        timeout=30,
    )
    assert done.status_code == 200, done.text
    assert value(scrape(gateway), gauge) == start + 1
    aborted = requests.post(
        f"{gateway.url}{MPU}/abort/{fresh_dir}",
        json={"path": "/home/me/dropped.bin", "upload_id": dropped["upload_id"]},
        timeout=30,
    )
    assert aborted.status_code == 200
    assert value(scrape(gateway), gauge) == start
    assert requests.get(gateway.artifact_url(f"{fresh_dir}/kept.bin"), timeout=30).content == b"".join(chunks)


def test_transfers_in_flight_and_refused_uploads(tmp_path: Path) -> None:
    with run_gateway(tmp_path, "--max-concurrent-uploads", "1") as gateway:
        big = os.urandom(64 * MIB)  # more than loopback socket buffers hold, so an unread download stalls
        assert requests.put(gateway.artifact_url("big.bin"), data=big, timeout=60).status_code == 200
        before = scrape(gateway)

        # An upload that has sent part of its body holds the only upload slot.
        slow = socket.create_connection(("127.0.0.1", gateway.port))
        slow.sendall(f"PUT {ARTIFACTS}/slow.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2000\r\n\r\n".encode())
        slow.sendall(b"a" * 1000)
        during = wait_for(gateway, lambda s: in_flight(s, "upload") == 1)
        assert in_flight(during, "upload") == 1
        refused = requests.put(gateway.artifact_url("other.bin"), data=b"b", timeout=30)
        assert refused.status_code == 503
        slow.sendall(b"a" * 1000)
        assert slow.recv(4096).startswith(b"HTTP/1.1 200")
        slow.close()
        after_upload = wait_for(gateway, lambda s: in_flight(s, "upload") == 0)
        assert in_flight(after_upload, "upload") == 0
        assert delta(before, after_upload, "artifact_gateway_upload_slots_refused_total") == 1
        assert requests_total(after_upload, "PUT", 503) - requests_total(before, "PUT", 503) == 1
        assert delta(before, after_upload, "artifact_gateway_bytes_received_total", backend="local") == 2000

        # A download whose client stops reading stays in flight until the client goes away (499).
        stalled = socket.create_connection(("127.0.0.1", gateway.port))
        stalled.sendall(f"GET {ARTIFACTS}/big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        assert stalled.recv(1024).startswith(b"HTTP/1.1 200")
        assert in_flight(wait_for(gateway, lambda s: in_flight(s, "download") == 1), "download") == 1
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        stalled.close()
        done = wait_for(gateway, lambda s: in_flight(s, "download") == 0 and requests_total(s, "GET", 499) == 1)
        assert in_flight(done, "download") == 0
        assert requests_total(done, "GET", 499) == 1
        directory = metrics_dir_of([gateway.proc.pid])  # one worker: the server process itself
    assert directory is not None and directory.name.startswith("artifact-gateway-metrics-")
    assert not directory.exists(), "the metrics directory is removed when the server stops"


def metrics_dir_of(pids: list[int]) -> Path | None:
    """The multiprocess directory the gateway's processes write their metric files to, once one has."""
    for pid in pids:
        for file in psutil.Process(pid).open_files():
            if file.path.endswith(f"_{pid}.db"):
                return Path(file.path).parent
    return None


def puts_counted_in(path: Path) -> float:
    """PUTs that one worker's counter file holds (read directly, not through a scrape)."""
    if not path.exists():
        return 0
    return sum(
        sample.value
        for metric in MultiProcessCollector.merge([str(path)])
        for sample in metric.samples
        if sample.name == "artifact_gateway_requests_total" and sample.labels["method"] == "PUT"
    )


def workers_of(gateway: RunningGateway) -> list[int]:
    return sorted(child.pid for child in psutil.Process(gateway.proc.pid).children())


def wait_for_workers(gateway: RunningGateway, gone: int | None = None) -> list[int]:
    """The two worker pids once both run (and `gone` is not among them)."""
    deadline = time.monotonic() + 30
    while (len(pids := workers_of(gateway)) != 2 or gone in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(pids) == 2 and gone not in pids, pids
    return pids


def test_two_workers_every_scrape_sums_both_and_survives_a_worker_death(tmp_path: Path) -> None:
    with run_gateway(tmp_path, "--workers", "2") as gateway:
        workers = wait_for_workers(gateway)
        data = os.urandom(1000)
        uploads = 0
        directory: Path | None = None

        def put(number: int) -> int:
            return requests.put(gateway.artifact_url(f"w/{number}.bin"), data=data, timeout=30).status_code

        # Connections land on whichever worker accepts first; sequential ones can all go to the same
        # worker (a loaded machine, a worker still starting), so send batches at once until each
        # worker has counted PUTs of its own.
        deadline = time.monotonic() + 90
        with ThreadPoolExecutor(8) as pool:
            while time.monotonic() < deadline:
                assert set(pool.map(put, range(uploads, uploads + 8))) == {200}
                uploads += 8
                directory = directory or metrics_dir_of(workers)
                if directory is not None and all(
                    puts_counted_in(directory / f"counter_{pid}.db") > 0 for pid in workers
                ):
                    break
        assert directory is not None
        assert all(puts_counted_in(directory / f"counter_{pid}.db") > 0 for pid in workers)

        def totals(samples: Samples) -> tuple[float, float]:
            return requests_total(samples, "PUT", 200), value(
                samples, "artifact_gateway_bytes_received_total", backend="local"
            )

        assert {totals(scrape(gateway)) for _ in range(12)} == {(uploads, uploads * len(data))}

        # A worker killed outright is restarted; what it counted still counts, in every scrape.
        os.kill(workers[0], signal.SIGKILL)
        wait_for_workers(gateway, gone=workers[0])
        assert not (directory / f"gauge_livesum_{workers[0]}.db").exists()  # its transfers ended with it
        assert {totals(scrape(gateway)) for _ in range(12)} == {(uploads, uploads * len(data))}
        assert in_flight(scrape(gateway), "upload") == 0
    assert not directory.exists(), "the metrics directory is removed when the server stops"


def test_a_storage_error_is_counted_by_backend_and_kind(s3_server: S3Server, tmp_path: Path) -> None:
    client = s3_client(s3_server)
    bucket = f"m-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    env = {**s3_server.env(), "ARTIFACT_GATEWAY_S3_ADDRESSING_STYLE": "path"}
    with run_gateway(tmp_path, env=env, destination=f"s3://{bucket}/root") as gateway:
        before = scrape(gateway)
        data = os.urandom(5000)
        assert requests.put(gateway.artifact_url("ok.bin"), data=data, timeout=30).status_code == 200
        assert requests.get(gateway.artifact_url("ok.bin"), timeout=30).content == data
        client.delete_object(Bucket=bucket, Key="root/ok.bin")
        client.delete_bucket(Bucket=bucket)  # the bucket vanishes under the running gateway
        failed = requests.get(gateway.artifact_url("ok.bin"), timeout=60)
        assert failed.status_code == 502, failed.text
        assert requests.get(f"{gateway.url}{ARTIFACTS}", timeout=60).status_code == 502
        after = scrape(gateway)
    assert delta(before, after, "artifact_gateway_backend_errors_total", backend="s3", kind="BackendError") == 2
    assert requests_total(after, "GET", 502) - requests_total(before, "GET", 502) == 1
    list_route = "/api/2.0/mlflow-artifacts/artifacts"
    assert requests_total(after, "GET", 502, list_route) - requests_total(before, "GET", 502, list_route) == 1
    assert delta(before, after, "artifact_gateway_bytes_received_total", backend="s3") == len(data)
    assert delta(before, after, "artifact_gateway_bytes_sent_total", backend="s3") == len(data)
    assert value(after, "artifact_gateway_bytes_received_total", backend="local") == 0


def test_a_killed_servers_directory_is_removed_by_the_next_server(tmp_path: Path) -> None:
    with run_gateway(tmp_path / "killed", "--workers", "2") as killed:
        assert requests.get(f"{killed.url}/metrics", timeout=30).status_code == 200
        workers = wait_for_workers(killed)
        deadline = time.monotonic() + 30
        while (abandoned := metrics_dir_of(workers)) is None and time.monotonic() < deadline:
            requests.get(f"{killed.url}/health", timeout=30)
        assert abandoned is not None
        with run_gateway(tmp_path / "alive") as alive:
            requests.get(f"{alive.url}/health", timeout=30)
            alive_dir = metrics_dir_of([alive.proc.pid])
            assert alive_dir is not None
            os.killpg(killed.proc.pid, signal.SIGKILL)  # no exit handler runs: the directory stays
            killed.proc.wait()
            assert abandoned.exists()
            with run_gateway(tmp_path / "next"):
                assert not abandoned.exists()
                assert alive_dir.exists(), "a running server's directory is left alone"
