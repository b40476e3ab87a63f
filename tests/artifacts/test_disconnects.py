"""Clients that vanish mid-transfer: nothing half-written, one log line, no traceback."""

from __future__ import annotations

import os
import socket
import time

import pytest

from tests.gateway_process import ARTIFACTS, RunningGateway


@pytest.mark.parametrize(
    ("sent_bytes", "declared"),
    [
        (0, 10 * 1024 * 1024),
        (1, 10 * 1024 * 1024),
        (3 * 1024 * 1024 + 5, 10 * 1024 * 1024),
        (1000, 64 * 1024),  # a small declared body takes the one-hop path: received whole first
    ],
)
@pytest.mark.parametrize("chunked", [False, True])
def test_disconnect_mid_upload_leaves_nothing_behind(
    gateway: RunningGateway, fresh_dir: str, sent_bytes: int, declared: int, chunked: bool
) -> None:
    target = f"{ARTIFACTS}/{fresh_dir}/new/sub/model.bin"
    request_id = f"disconnect-{fresh_dir}"
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {declared}"
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(
            f"PUT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: {request_id}\r\n{framing}\r\n\r\n".encode()
        )
        payload = os.urandom(sent_bytes)
        if chunked and payload:
            sock.sendall(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        elif payload:
            sock.sendall(payload)
        time.sleep(0.2)
    lines = gateway.wait_for_log(request_id=request_id)
    assert len(lines) == 1
    assert lines[0]["outcome"] == "client_disconnected"
    assert lines[0]["level"] == "info"
    assert not (gateway.destination / fresh_dir).exists(), "no object and no new empty directory"
    assert list((gateway.destination / ".artifact-gateway-staging").iterdir()) == []
    log_text = gateway.log_path.read_text()
    assert "Traceback" not in log_text
    assert '"level": "error"' not in log_text


def test_disconnect_mid_upload_keeps_the_previous_version(gateway: RunningGateway, fresh_dir: str) -> None:
    existing = gateway.destination / fresh_dir / "model.bin"
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"previous version")
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(
            f"PUT {ARTIFACTS}/{fresh_dir}/model.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Length: 5000000\r\n\r\n".encode()
            + os.urandom(2_000_000)
        )
        time.sleep(0.2)
    gateway.wait_for_log(outcome="client_disconnected", path=f"{ARTIFACTS}/{fresh_dir}/model.bin")
    assert existing.read_bytes() == b"previous version"


def test_disconnect_mid_download_is_one_info_line(gateway: RunningGateway, fresh_dir: str) -> None:
    big = gateway.destination / fresh_dir / "big.bin"
    big.parent.mkdir(parents=True)
    big.write_bytes(os.urandom(64 * 1024 * 1024))
    request_id = f"download-{fresh_dir}"
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(
            f"GET {ARTIFACTS}/{fresh_dir}/big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"X-Request-Id: {request_id}\r\n\r\n".encode()
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
    lines = gateway.wait_for_log(request_id=request_id)
    assert len(lines) == 1
    assert lines[0]["status"] in (200, 499)
    assert "Traceback" not in gateway.log_path.read_text()
    # The server is still healthy and serves the next client.
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
