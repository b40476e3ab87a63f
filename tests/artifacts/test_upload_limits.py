"""Upload limits: size (413; for a multipart upload each part and the total), uploads at once
(503 + Retry-After), a silent client (408).

Each refusal is a clear JSON error, and nothing of the refused upload is stored or left staged.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.gateway_process import ARTIFACTS, RunningGateway, run_gateway

MIB = 1 << 20
IDLE_S = 1.5
MPU = "/api/2.0/mlflow-artifacts/mpu"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with run_gateway(
        tmp_path_factory.mktemp("limited"),
        "--max-upload-size-mib",
        "1",
        "--max-concurrent-uploads",
        "1",
        "--client-idle-timeout-seconds",
        str(IDLE_S),
    ) as running:
        yield running


def staging_is_empty(gateway: RunningGateway) -> bool:
    """No staging file (the directory of multipart uploads, `mpu`, may exist: it is checked on its own)."""
    return [entry.name for entry in (gateway.destination / ".artifact-gateway-staging").iterdir()] in ([], ["mpu"])


def start_slow_upload(gateway: RunningGateway, target: str, declared: int, sent: bytes) -> socket.socket:
    """A PUT that has sent its headers and `sent`, and then goes quiet."""
    sock = socket.create_connection(("127.0.0.1", gateway.port))
    sock.sendall(f"PUT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {declared}\r\n\r\n".encode() + sent)
    return sock


def read_response(sock: socket.socket, timeout: float) -> tuple[int, dict[str, str], bytes]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    length = int(headers.get("Content-Length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("chunked", [False, True])
def test_an_upload_over_the_size_limit_is_413_and_stores_nothing(
    limited: RunningGateway, fresh_dir: str, chunked: bool
) -> None:
    data = os.urandom(MIB + 1)
    body = iter([data[i : i + 65536] for i in range(0, len(data), 65536)]) if chunked else data
    response = requests.put(limited.artifact_url(f"{fresh_dir}/big.bin"), data=body, timeout=30)
    assert response.status_code == 413
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "--max-upload-size-mib" in response.json()["message"]
    assert not (limited.destination / fresh_dir).exists()
    assert staging_is_empty(limited)
    exact = requests.put(limited.artifact_url(f"{fresh_dir}/exact.bin"), data=data[:MIB], timeout=30)
    assert exact.status_code == 200
    assert (limited.destination / fresh_dir / "exact.bin").read_bytes() == data[:MIB]


@pytest.mark.parametrize("chunked", [False, True])
def test_the_mlflow_ui_upload_is_bound_by_a_tighter_server_limit(limited: RunningGateway, chunked: bool) -> None:
    """The UI route's own 10 MiB yields to --max-upload-size-mib where that is smaller, and says so."""
    api = f"{limited.url}/api/2.0/mlflow"
    experiment = requests.post(f"{api}/experiments/create", json={"name": os.urandom(4).hex()}, timeout=10).json()
    run = requests.post(f"{api}/runs/create", json={"experiment_id": experiment["experiment_id"]}, timeout=10).json()
    run_id = run["run"]["info"]["run_id"]
    data = os.urandom(MIB + 1)
    body = iter([data[i : i + 65536] for i in range(0, len(data), 65536)]) if chunked else data
    response = requests.post(
        f"{limited.url}/ajax-api/2.0/mlflow/upload-artifact",
        params={"run_uuid": run_id, "path": "big.bin"},
        data=body,
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["message"] == "Uploads are limited to 1 MiB on this server (--max-upload-size-mib)."
    listed = requests.get(f"{api}/artifacts/list", params={"run_id": run_id}, timeout=10).json()
    assert listed.get("files", []) == []
    assert staging_is_empty(limited)


def test_one_upload_too_many_is_503_with_retry_after(limited: RunningGateway, fresh_dir: str) -> None:
    target = f"{ARTIFACTS}/{fresh_dir}/first.bin"
    first = start_slow_upload(limited, target, 20, b"0123456789")
    try:
        time.sleep(0.3)  # the first upload now holds the only slot
        refused = requests.put(limited.artifact_url(f"{fresh_dir}/second.bin"), data=b"x" * 100, timeout=10)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        first.sendall(b"abcdefghij")
        status, _, _ = read_response(first, timeout=10)
        assert status == 200
    finally:
        first.close()
    assert (limited.destination / fresh_dir / "first.bin").read_bytes() == b"0123456789abcdefghij"
    assert not (limited.destination / fresh_dir / "second.bin").exists()
    again = requests.put(limited.artifact_url(f"{fresh_dir}/second.bin"), data=b"x" * 100, timeout=10)
    assert again.status_code == 200


def test_a_silent_client_gets_408_and_nothing_is_stored(limited: RunningGateway, fresh_dir: str) -> None:
    target = f"{ARTIFACTS}/{fresh_dir}/quiet.bin"
    sock = start_slow_upload(limited, target, 2 * 65536, b"x" * 1000)
    try:
        started = time.monotonic()
        status, _, body = read_response(sock, timeout=IDLE_S + 10)
        waited = time.monotonic() - started
    finally:
        sock.close()
    assert status == 408
    assert "nothing was stored" in json.loads(body)["message"]
    assert IDLE_S * 0.8 <= waited < IDLE_S + 5
    assert not (limited.destination / fresh_dir).exists()
    assert staging_is_empty(limited)
    # The slot it held is free again.
    assert requests.put(limited.artifact_url(f"{fresh_dir}/after.bin"), data=b"ok", timeout=10).status_code == 200


def test_a_slow_but_steady_upload_is_not_cut(limited: RunningGateway, fresh_dir: str) -> None:
    """The idle limit is between bytes, not on the whole transfer: this one takes > 2x the limit."""
    target = f"{ARTIFACTS}/{fresh_dir}/steady.bin"
    pieces = [os.urandom(1000) for _ in range(8)]
    sock = start_slow_upload(limited, target, 8000, b"")
    try:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(IDLE_S / 3)
        status, _, _ = read_response(sock, timeout=10)
    finally:
        sock.close()
    assert status == 200
    assert (limited.destination / fresh_dir / "steady.bin").read_bytes() == b"".join(pieces)


def send_parts(
    gateway: RunningGateway, directory: str, name: str, sizes: list[int]
) -> tuple[str, list[dict[str, object]]]:
    """mpu/create as MLflow's client sends it (path and num_parts, no size), then each part."""
    created = requests.post(
        f"{gateway.url}{MPU}/create/{directory}", json={"path": f"/home/me/{name}", "num_parts": len(sizes)}, timeout=30
    )
    assert created.status_code == 200, created.text
    parts: list[dict[str, object]] = []
    for credential, size in zip(created.json()["credentials"], sizes, strict=True):
        response = requests.put(credential["url"], data=os.urandom(size), timeout=30)
        assert response.status_code == 200, response.text
        parts.append({"part_number": credential["part_number"], "etag": response.headers["ETag"]})
    return created.json()["upload_id"], parts


def complete(
    gateway: RunningGateway, directory: str, name: str, upload_id: str, parts: list[dict[str, object]]
) -> requests.Response:
    return requests.post(
        f"{gateway.url}{MPU}/complete/{directory}",
        json={"path": f"/home/me/{name}", "upload_id": upload_id, "parts": parts},
        timeout=30,
    )


def test_a_multipart_upload_over_the_size_limit_in_all_is_413_and_aborted(
    limited: RunningGateway, fresh_dir: str
) -> None:
    """Each part is under the limit; their total is not: refused at completion, before assembly."""
    upload_id, parts = send_parts(limited, fresh_dir, "big.bin", [600 * 1024, 600 * 1024])
    response = complete(limited, fresh_dir, "big.bin", upload_id, parts)
    assert response.status_code == 413
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    message = response.json()["message"]
    assert "--max-upload-size-mib" in message and "1.2 MiB" in message and "aborted" in message
    assert requests.get(limited.artifact_url(f"{fresh_dir}/big.bin"), timeout=30).status_code == 404
    assert requests.get(f"{limited.url}{ARTIFACTS}", params={"path": fresh_dir}, timeout=30).json() == {}
    assert not (limited.destination / fresh_dir).exists()
    assert list((limited.destination / ".artifact-gateway-staging" / "mpu").iterdir()) == []  # aborted
    assert staging_is_empty(limited)
    # The upload is gone: completing it again cannot sneak it through.
    assert complete(limited, fresh_dir, "big.bin", upload_id, parts).status_code == 404


def test_a_multipart_upload_at_the_size_limit_completes(limited: RunningGateway, fresh_dir: str) -> None:
    upload_id, parts = send_parts(limited, fresh_dir, "exact.bin", [MIB // 2, MIB // 2])
    response = complete(limited, fresh_dir, "exact.bin", upload_id, parts)
    assert response.status_code == 200, response.text
    assert (limited.destination / fresh_dir / "exact.bin").stat().st_size == MIB


def test_one_part_over_the_size_limit_is_413_as_it_arrives(limited: RunningGateway, fresh_dir: str) -> None:
    created = requests.post(
        f"{limited.url}{MPU}/create/{fresh_dir}", json={"path": "/home/me/p.bin", "num_parts": 1}, timeout=30
    ).json()
    response = requests.put(created["credentials"][0]["url"], data=os.urandom(MIB + 1), timeout=30)
    assert response.status_code == 413
    assert "--max-upload-size-mib" in response.json()["message"]
    upload = limited.destination / ".artifact-gateway-staging" / "mpu" / created["upload_id"]
    assert sorted(item.name for item in upload.iterdir()) == ["data", "upload.json"]  # no part stored
    assert (upload / "data").stat().st_size == 0
    assert staging_is_empty(limited)


def test_the_largest_batch_mlflow_allows_fits_and_a_bigger_json_body_is_413(limited: RunningGateway) -> None:
    """JSON bodies (tracking, multipart) are read whole, so they are capped; MLflow's biggest batch fits."""
    api = f"{limited.url}/api/2.0/mlflow"
    experiment = requests.post(f"{api}/experiments/create", json={"name": f"big-{os.urandom(4).hex()}"}, timeout=30)
    run = requests.post(f"{api}/runs/create", json={"experiment_id": experiment.json()["experiment_id"]}, timeout=30)
    run_id = run.json()["run"]["info"]["run_id"]
    batch = {
        "run_id": run_id,
        "params": [{"key": f"p{i}", "value": "v" * 6000} for i in range(100)],
        "tags": [{"key": f"t{i}", "value": "w" * 8000} for i in range(100)],
        "metrics": [{"key": f"m{i}", "value": 1.5, "timestamp": 1, "step": i} for i in range(800)],
    }
    assert len(json.dumps(batch)) > 1_400_000  # past aiohttp's default 1 MiB
    assert requests.post(f"{api}/runs/log-batch", json=batch, timeout=60).status_code == 200
    fetched = requests.get(f"{api}/runs/get", params={"run_id": run_id}, timeout=30).json()["run"]["data"]
    assert len(fetched["params"]) == 100 and len(fetched["tags"]) >= 100
    too_big = {"run_id": run_id, "tags": [{"key": "x", "value": "y" * (17 * MIB)}]}
    refused = requests.post(f"{api}/runs/set-tag", json=too_big, timeout=60)
    assert refused.status_code == 413
    assert refused.json()["error_code"] == "BAD_REQUEST"
    assert "16 MiB" in refused.json()["message"]
    unchanged = requests.get(f"{api}/runs/get", params={"run_id": run_id}, timeout=30).json()["run"]["data"]
    assert unchanged == fetched


def test_an_oversized_request_header_is_refused(limited: RunningGateway) -> None:
    response = requests.get(f"{limited.url}/health", headers={"X-Big": "a" * 10_000}, timeout=30)
    assert response.status_code in (400, 431)


async def test_a_large_body_is_read_in_large_gulps_and_the_connection_gets_its_read_size_back() -> None:
    """asyncio reads 256 KiB per socket read; a large streamed body is read 1 MiB at a time, and a later
    request on the same keep-alive connection is back to the default."""
    import hashlib

    import aiohttp
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from gateway.artifacts.upload_limits import STREAM_READ_BYTES, limited_body
    from gateway.settings import Settings

    settings = Settings()
    seen: list[tuple[int, int, str]] = []
    defaults: set[int] = set()

    async def consume(request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        during = 0
        defaults.add(type(request.transport).max_size)  # asyncio's own read size
        async for chunk in limited_body(request, settings):
            during = max(during, request.transport.max_size)  # type: ignore[union-attr]
            digest.update(chunk)
        seen.append((during, request.transport.max_size, digest.hexdigest()))  # type: ignore[union-attr]
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_put("/up", consume)
    large, small = os.urandom(3 * MIB + 7), os.urandom(1000)
    async with TestServer(app) as server, aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        for body in (large, small):
            async with session.put(server.make_url("/up"), data=body) as response:
                assert response.status == 200
    assert len(defaults) == 1
    default = defaults.pop()
    assert default < STREAM_READ_BYTES
    assert seen == [
        (STREAM_READ_BYTES, default, hashlib.sha256(large).hexdigest()),
        (default, default, hashlib.sha256(small).hexdigest()),
    ]


async def test_only_a_few_bodies_at_once_are_read_in_large_gulps() -> None:
    """Each large read can sit in a body's buffer: past LARGE_READ_STREAMS at once, asyncio's size."""
    import asyncio

    import aiohttp
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from gateway.artifacts.upload_limits import LARGE_READ_STREAMS, STREAM_READ_BYTES, limited_body
    from gateway.settings import Settings

    settings = Settings()
    uploads = LARGE_READ_STREAMS + 1
    inside = asyncio.Barrier(uploads + 1)
    sizes: list[int] = []
    received: list[int] = []

    async def consume(request: web.Request) -> web.Response:
        total = 0
        async for chunk in limited_body(request, settings):
            if not total:
                sizes.append(request.transport.max_size)  # type: ignore[union-attr]
                await inside.wait()  # every upload is streaming at once
            total += len(chunk)
        received.append(total)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_put("/up", consume)
    body = os.urandom(3 * MIB)
    async with TestServer(app) as server, aiohttp.ClientSession() as session:

        async def put() -> int:
            async with session.put(server.make_url("/up"), data=body) as response:
                return response.status

        puts = [asyncio.ensure_future(put()) for _ in range(uploads)]
        await asyncio.wait_for(inside.wait(), 10)
        assert await asyncio.gather(*puts) == [200] * uploads
    assert len(sizes) == uploads
    assert sizes.count(STREAM_READ_BYTES) == LARGE_READ_STREAMS  # the rest read at asyncio's own size
    assert received == [len(body)] * uploads
