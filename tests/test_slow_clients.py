"""Slow and idle clients (finding 4 of the security review): a connection that sends nothing, half a
request line, its headers a byte at a time or a JSON body a byte at a time is closed within the
configured time, and a flood of idle connections neither starves new ones nor floods the log.

Each replay uses timeouts of about a second, so it takes a few seconds; before these limits aiohttp
held every such connection for up to an hour.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.gateway_process import RunningGateway, run_gateway

HEAD_S = 1.0
IDLE_S = 2.5
JSON_S = 1.0


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with run_gateway(
        tmp_path_factory.mktemp("slow"),
        "--request-head-timeout-seconds",
        str(HEAD_S),
        "--keepalive-timeout-seconds",
        str(IDLE_S),
        "--json-body-timeout-seconds",
        str(JSON_S),
        "--client-idle-timeout-seconds",
        "5",
    ) as gateway:
        yield gateway


def connect(gateway: RunningGateway) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    sock.settimeout(10)
    return sock


def trickle(sock: socket.socket, data: bytes, every_s: float, until_s: float) -> None:
    """Send `data` a byte every `every_s` seconds, for at most `until_s`, stopping once the server closes."""
    deadline = time.monotonic() + until_s
    for byte in data:
        if time.monotonic() > deadline:
            return
        try:
            sock.sendall(bytes([byte]))
        except OSError:  # closed by the server
            return
        time.sleep(every_s)


def closed_after(sock: socket.socket, started: float) -> tuple[float, bytes]:
    """Seconds from `started` until the server closed `sock`, and what it sent before that."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return time.monotonic() - started, received


def test_a_connection_that_sends_nothing_is_closed_when_idle(strict: RunningGateway) -> None:
    started = time.monotonic()
    with connect(strict) as sock:
        elapsed, received = closed_after(sock, started)
    assert received == b""
    assert IDLE_S - 0.5 <= elapsed <= IDLE_S + 2, elapsed


def test_half_a_request_line_is_closed_after_the_head_timeout(strict: RunningGateway) -> None:
    with connect(strict) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /heal")
        elapsed, _ = closed_after(sock, started)
    assert elapsed <= HEAD_S + 1, elapsed


def test_headers_a_byte_at_a_time_are_cut_off(strict: RunningGateway) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    with connect(strict) as sock:
        started = time.monotonic()
        trickle(sock, head, 0.2, until_s=HEAD_S + 2)
        elapsed, received = closed_after(sock, started)
    assert elapsed <= HEAD_S + 2.5, elapsed
    assert b"200 OK" not in received


def test_a_json_body_a_byte_at_a_time_is_answered_408_and_closed(strict: RunningGateway) -> None:
    body = json.dumps({"name": "slow-" + "x" * 100}).encode()
    head = (
        b"POST /api/2.0/mlflow/experiments/create HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    with connect(strict) as sock:
        started = time.monotonic()
        sock.sendall(head)
        trickle(sock, body, 0.2, until_s=JSON_S + 1)
        elapsed, received = closed_after(sock, started)
    assert elapsed <= JSON_S + 2, elapsed
    assert received.startswith(b"HTTP/1.1 408 "), received[:200]
    assert b"--json-body-timeout-seconds" in received
    line = strict.wait_for_log(msg="request", path="/api/2.0/mlflow/experiments/create", status=408)[0]
    assert line["outcome"] == "body_timeout"


def test_a_slow_but_steady_upload_and_a_prompt_request_still_work(strict: RunningGateway) -> None:
    """Artifact bodies stream: only --client-idle-timeout-seconds applies to them, not the JSON deadline."""

    def body() -> Iterator[bytes]:
        for _ in range(5):
            time.sleep(0.5)  # 2.5 s in all: past the JSON deadline, never idle for the upload timeout
            yield b"x" * 1000

    response = requests.put(strict.artifact_url("slow/steady.bin"), data=body(), timeout=30)
    assert response.status_code == 200, response.text
    assert requests.get(strict.artifact_url("slow/steady.bin"), timeout=30).content == b"x" * 5000
    created = requests.post(f"{strict.url}/api/2.0/mlflow/experiments/create", json={"name": "prompt"}, timeout=30)
    assert created.status_code == 200


def test_a_flood_of_idle_connections_neither_starves_health_nor_floods_the_log(tmp_path: Path) -> None:
    """1,100 idle connections used to exhaust a worker's descriptors: /health timed out and every failed
    accept() logged a traceback (74 MB in 40 s). Here the worker may open 512 descriptors and 600 idle
    connections arrive: the cap (lowered to fit) closes the longest idle to make room for new ones."""
    with run_gateway(tmp_path, open_files=512) as gateway:
        idle = []
        try:
            for _ in range(600):
                idle.append(socket.create_connection(("127.0.0.1", gateway.port), timeout=10))
            for _ in range(3):
                started = time.monotonic()
                health = requests.get(f"{gateway.url}/health", timeout=5)
                assert health.status_code == 200 and time.monotonic() - started < 2
            time.sleep(1)
        finally:
            for sock in idle:
                sock.close()
        log = gateway.log_path.read_text()
        assert "Traceback" not in log and "accepting connections failed" not in log
        assert len(log.splitlines()) < 60, log[-3000:]
        assert any(line.get("msg", "").startswith("closed the longest idle") for line in gateway.log_lines())
