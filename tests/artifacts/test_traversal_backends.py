"""MLflow's traversal corpus against every path-taking route on every backend: 400, nothing touched.

`test_traversal.py` proves the local-disk case in depth (symlinks, each method alone); this file
sends every payload to every route that takes a path (artifacts, listing, multipart create,
complete and abort, presigned download, folder archive), on local disk, S3 and Azure, and compares everything the
destination's storage holds (a canary outside the gateway's root included) before and after.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from tests.artifacts.test_traversal import CANARY, URL_PAYLOADS
from tests.cloud_backend import Backend
from tests.conftest import tree_snapshot
from tests.gateway_process import ARTIFACTS, RunningGateway, run_gateway

API = "/api/2.0/mlflow-artifacts"


class Target:
    """A gateway and a way to see everything its storage holds."""

    def __init__(self, gateway: RunningGateway, snapshot: Callable[[], object]) -> None:
        self.gateway = gateway
        self.snapshot = snapshot


@pytest.fixture(scope="module", params=["local", "s3", "azure"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    workdir = tmp_path_factory.mktemp(f"traversal-{request.param}")
    if request.param == "local":
        outside = workdir / "outside"
        outside.mkdir()
        (outside / "canary.txt").write_bytes(CANARY)
        with run_gateway(workdir, "--presigned-downloads") as gateway:
            yield Target(gateway, lambda: _files_and_dirs_but_staging_dirs(workdir))
        return
    backend = Backend(request.param, request)
    if backend.kind == "s3":
        backend.client.put_object(Bucket=backend.name, Key="outside/canary.txt", Body=CANARY)
    else:
        backend.service.get_blob_client(backend.name, "outside/canary.txt").upload_blob(CANARY)
    with run_gateway(workdir, "--presigned-downloads", env=backend.env, destination=backend.uri) as gateway:
        yield Target(gateway, backend.stored_keys)


def _files_and_dirs_but_staging_dirs(workdir: Path) -> dict[str, bytes | None]:
    """outside/ and the destination beside it; empty staging directories left by an aborted upload aside."""
    return {
        key: value
        for key, value in tree_snapshot(workdir).items()
        if not (value is None and ".artifact-gateway-staging" in key)
    }


def _requests(payload: str, canary_dir: str) -> list[tuple[str, str, bytes | None]]:
    text = payload.replace("{abs}", canary_dir)
    body_path = unquote(text)  # what a client would put in a JSON body: the decoded text
    mpu_body = json.dumps(
        {"path": "f.bin", "num_parts": 1, "upload_id": "u", "parts": [{"part_number": 1, "etag": "e"}]}
    )
    return [
        ("GET", f"{ARTIFACTS}/{text}", None),
        ("HEAD", f"{ARTIFACTS}/{text}", None),
        ("PUT", f"{ARTIFACTS}/{text}", b"overwritten!"),
        ("DELETE", f"{ARTIFACTS}/{text}", None),
        ("GET", f"{ARTIFACTS}?path={quote(text, safe='%')}", None),
        ("GET", f"{API}/presigned/{text}", None),
        ("GET", f"{API}/archive/{text}", None),
        ("GET", f"{API}/archive/{text}?format=tar.gz", None),
        *[(("POST", f"{API}/mpu/{action}/{text}", mpu_body.encode())) for action in ("create", "complete", "abort")],
        *[
            ("POST", f"{API}/mpu/{action}/safe/dir", json.dumps({**json.loads(mpu_body), "path": body_path}).encode())
            for action in ("create", "complete", "abort")
        ],
    ]


@pytest.mark.parametrize("payload", URL_PAYLOADS)
def test_payload_on_every_path_route_is_refused_and_touches_nothing(target: Target, payload: str) -> None:
    gateway = target.gateway
    canary_dir = str(gateway.destination.parent / "outside").lstrip("/")
    before = target.snapshot()
    for method, url, body in _requests(payload, canary_dir):
        status, _, content = gateway.raw_request(method, url, body)
        where = f"{method} {url}"
        assert CANARY not in content, where
        if url.endswith("/safe/dir"):
            # The body's path contributes only its last segment, so `../x/canary.txt` names `canary.txt`
            # inside safe/dir: harmless, and an upload that was never created is not found.
            assert status in (200, 400, 404), (where, status, content)
            if status == 200 and "/create/" in url:
                created = json.loads(content)
                abort_body = json.dumps({**json.loads(body or b"{}"), "upload_id": created["upload_id"]}).encode()
                abort_status, _, _ = gateway.raw_request("POST", url.replace("/create/", "/abort/"), abort_body)
                assert abort_status == 200
        else:
            assert status == 400, (where, status, content)
    assert target.snapshot() == before
    if isinstance(before, list):
        assert "outside/canary.txt" in before
    assert not any(line.get("status") == 500 for line in gateway.log_lines())


def test_a_body_path_of_only_dots_is_refused(target: Target) -> None:
    for name in ("..", ".", "a/..", "..\\", "C:\\temp\\.."):
        status, _, content = target.gateway.raw_request(
            "POST", f"{API}/mpu/create/safe/dir", json.dumps({"path": name, "num_parts": 1}).encode()
        )
        assert status == 400, (name, content)


def test_canary_dir_is_real(target: Target) -> None:
    snapshot = target.snapshot()
    assert snapshot  # the comparison above is over something, not an empty listing
    if isinstance(snapshot, dict):
        assert any(value == CANARY for value in snapshot.values())
