"""Small leaks and inconsistencies (finding 10 of the security review), replayed against a running gateway:
a readiness answer that named the storage endpoint, listings that passed through names the stock
client then choked on, aiohttp's traceback for a NUL in a request line, and its `Server` banner.
(The backends' file/folder agreement and Azure's concurrent writes are in the conformance suite, the
symlink listing in tests/repositories/test_local_repository.py, the 200,000-point chart in
tests/ui/test_ui_browser.py.)
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from tests.gateway_process import ARTIFACTS, RunningGateway, run_gateway


class _FakeS3(http.server.BaseHTTPRequestHandler):
    """Just enough S3 for a gateway to start: the bucket exists, no multipart upload is open."""

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        body = b'<?xml version="1.0"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>'
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_s3() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeS3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_readiness_says_unavailable_and_logs_why(tmp_path: Path, fake_s3: http.server.ThreadingHTTPServer) -> None:
    """/health/ready is public: its answer named the S3 endpoint that did not answer."""
    endpoint = f"http://127.0.0.1:{fake_s3.server_address[1]}"
    env = {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_DEFAULT_REGION": "us-east-1"}
    args = ("--artifacts-only", "--s3-endpoint-url", endpoint, "--s3-addressing-style", "path")
    with run_gateway(tmp_path, *args, env=env, destination="s3://private-bucket/root") as gateway:
        assert requests.get(f"{gateway.url}/health/ready", timeout=30).json() == {"status": "ok", "artifacts": "ok"}
        fake_s3.shutdown()
        fake_s3.server_close()  # the storage endpoint is gone
        down = requests.get(f"{gateway.url}/health/ready", timeout=30)
        assert (down.status_code, down.json()) == (503, {"status": "unavailable", "artifacts": "unavailable"})
        assert str(fake_s3.server_address[1]) not in down.text and "private-bucket" not in down.text
        logged = gateway.wait_for_log(msg="readiness check failed", check="artifacts")[0]
        port = str(fake_s3.server_address[1])  # botocore's retries may outlast the check's 5 s on a busy machine
        assert port in str(logged["reason"]) or logged["reason"] == "no answer in 5 s"  # the operator learns why


def test_names_no_client_could_use_are_left_out_and_the_folder_downloads(
    gateway: RunningGateway, tmp_path: Path
) -> None:
    folder = gateway.destination / "stored-around"
    folder.mkdir(parents=True)
    for name in ("%2e%2e%2fevil.txt", "a#b?c.txt", "tab\tname.txt", "fine.txt"):
        (folder / name).write_bytes(b"x")
    listed = requests.get(f"{gateway.url}{ARTIFACTS}", params={"path": "stored-around"}, timeout=30).json()
    assert listed == {"files": [{"path": "fine.txt", "is_dir": False, "file_size": 1}]}
    warning = gateway.wait_for_log(msg="listing leaves out names no client could use")[0]
    assert warning["left_out"] == 3 and warning["folder"] == "stored-around"
    mlflow.set_tracking_uri(gateway.url)  # undone after the test (conftest)
    repository = get_artifact_repository(f"mlflow-artifacts://127.0.0.1:{gateway.port}/stored-around")
    downloaded = Path(repository.download_artifacts("", str(tmp_path)))  # the stock client: the whole folder
    assert sorted(path.name for path in downloaded.iterdir()) == ["fine.txt"]


def test_a_nul_in_a_request_line_is_one_info_line(gateway: RunningGateway) -> None:
    before = len(gateway.log_lines())
    for raw in (b"GET /\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nBad\x00: 1\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
            sock.sendall(raw)
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.0 400 ") or answer.startswith(b"HTTP/1.1 400 "), answer[:100]
        assert b"Server:" not in answer and b"\\x00" not in answer
    time.sleep(0.3)
    new = gateway.log_lines()[before:]
    assert [line["level"] for line in new if line["msg"] == "refused a malformed request"] == ["info"]  # one, quietly
    assert not [line for line in new if line["level"] == "error" or "exc" in line], new


def test_no_response_names_the_server_software(gateway: RunningGateway) -> None:
    requests.put(gateway.artifact_url("banner/big.bin"), data=b"b" * (1 << 20), timeout=30).raise_for_status()
    answers = [
        requests.get(f"{gateway.url}/health", timeout=30),
        requests.get(f"{gateway.url}{ARTIFACTS}", timeout=30),
        requests.get(gateway.artifact_url("banner/big.bin"), timeout=30),  # streamed with sendfile
        requests.head(gateway.artifact_url("banner/big.bin"), timeout=30),
        requests.get(f"{gateway.url}/no/such/route", timeout=30),
        requests.get(f"{gateway.url}/experiments", timeout=30),  # a UI page
        requests.get(f"{gateway.url}/ui-static/ui.js", timeout=30),
        requests.post(f"{gateway.url}/api/2.0/mlflow/experiments/create", data="x", timeout=30),
    ]
    for answer in answers:
        assert "Server" not in answer.headers, (answer.url, answer.headers)
