"""Clients that vanish at random byte offsets, on every backend: the object is whole or absent.

Offsets are drawn with a fixed seed around the places where the gateway changes what it does: the
one-hop limit for small bodies (1 MiB), the S3 part / Azure block size (8 MiB) and its multiples.
After each cut the previous version of the object (if any) is still served intact, nothing new is
visible, and no staging file or open multipart upload is left.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.cloud_backend import Backend
from tests.gateway_process import ARTIFACTS, RunningGateway, run_gateway

MIB = 1 << 20
DECLARED = 20 * MIB
_rng = random.Random(20261127)
OFFSETS = sorted(
    {0, 1, MIB - 1, MIB + 1, 8 * MIB - 1, 8 * MIB, 8 * MIB + 1, 16 * MIB + 3, DECLARED - 1}
    | {_rng.randrange(1, DECLARED) for _ in range(4)}
)


class Target:
    def __init__(self, gateway: RunningGateway, backend: Backend | None) -> None:
        self.gateway = gateway
        self.backend = backend

    def leftovers(self) -> list[str]:
        """Staging files (local) or open multipart uploads (S3); Azure never shows uncommitted blocks."""
        if self.backend is None:
            staging = self.gateway.destination / ".artifact-gateway-staging"
            return [str(path) for path in staging.rglob("*") if path.is_file()] if staging.exists() else []
        return self.backend.open_uploads()


@pytest.fixture(scope="module", params=["local", "s3", "azure"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    workdir = tmp_path_factory.mktemp(f"cut-{request.param}")
    if request.param == "local":
        with run_gateway(workdir) as gateway:
            yield Target(gateway, None)
        return
    backend = Backend(request.param, request)
    with run_gateway(workdir, env=backend.env, destination=backend.uri) as gateway:
        yield Target(gateway, backend)


def _cut_upload(gateway: RunningGateway, path: str, sent: int, chunked: bool) -> None:
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {DECLARED}"
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(f"PUT {ARTIFACTS}/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{framing}\r\n\r\n".encode())
        remaining = sent
        while remaining:
            block = os.urandom(min(remaining, MIB))
            sock.sendall(f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block)
            remaining -= len(block)
        time.sleep(0.05)


@pytest.mark.parametrize("chunked", [False, True])
def test_a_cut_at_any_offset_leaves_the_old_version_or_nothing(target: Target, chunked: bool) -> None:
    gateway = target.gateway
    previous = os.urandom(3 * MIB)
    prefix = f"cut-{'chunked' if chunked else 'length'}-{os.urandom(3).hex()}"
    url = gateway.artifact_url(f"{prefix}/kept.bin")
    assert requests.put(url, data=previous, timeout=60).status_code == 200
    for offset in OFFSETS:
        _cut_upload(gateway, f"{prefix}/kept.bin", offset, chunked)  # over an existing object
        _cut_upload(gateway, f"{prefix}/new-{offset}.bin", offset, chunked)  # where nothing was
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (target.leftovers() or _in_flight(gateway, prefix)):
        time.sleep(0.2)
    assert target.leftovers() == []
    served = requests.get(url, timeout=60)
    assert hashlib.sha256(served.content).digest() == hashlib.sha256(previous).digest()
    listing = requests.get(f"{gateway.url}{ARTIFACTS}", params={"path": prefix}, timeout=30).json()
    assert [entry["path"] for entry in listing["files"]] == ["kept.bin"]  # one level, names relative to the directory
    assert "Traceback" not in gateway.log_path.read_text()


def _in_flight(gateway: RunningGateway, prefix: str) -> bool:
    """Whether some cut upload under `prefix` has not been logged yet (the gateway is still noticing the cut)."""
    puts = [
        line
        for line in gateway.log_lines()
        if line.get("msg") == "request" and line.get("method") == "PUT" and prefix in str(line.get("path"))
    ]
    return len(puts) < 2 * len(OFFSETS) + 1
