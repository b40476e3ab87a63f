"""MLflow's multipart upload API through the gateway's own signed part URLs (local disk)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from gateway.artifacts.part_tokens import PartGrant, sign
from tests.gateway_process import RunningGateway, run_gateway

MPU = "/api/2.0/mlflow-artifacts/mpu"
KEY = "test-signing-key-shared-by-replicas"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> object:
    with run_gateway(tmp_path_factory.mktemp("mpu"), "--signing-key", KEY) as running:
        yield running


def create(gateway: RunningGateway, directory: str, name: str, parts: int) -> dict[str, object]:
    response = requests.post(
        f"{gateway.url}{MPU}/create/{directory}", json={"path": f"/home/me/{name}", "num_parts": parts}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_create_put_parts_complete(gateway: RunningGateway, fresh_dir: str) -> None:
    chunks = [os.urandom(1024 * 1024), os.urandom(1024 * 1024), os.urandom(777)]
    created = create(gateway, f"{fresh_dir}/run", "model.bin", 3)
    credentials = created["credentials"]
    assert [c["part_number"] for c in credentials] == [1, 2, 3]
    assert all(c["url"].startswith(f"{gateway.url}{MPU}/part?token=") for c in credentials)
    parts = []
    for credential in reversed(credentials):  # any order, as the client's thread pool does
        response = requests.put(credential["url"], data=chunks[credential["part_number"] - 1], timeout=30)
        assert response.status_code == 200
        parts.append(
            {"part_number": credential["part_number"], "etag": response.headers["ETag"], "url": credential["url"]}
        )
    assert not (gateway.destination / fresh_dir / "run" / "model.bin").exists()  # invisible until complete
    done = requests.post(
        f"{gateway.url}{MPU}/complete/{fresh_dir}/run",
        json={"path": "/home/me/model.bin", "upload_id": created["upload_id"], "parts": parts},
        timeout=30,
    )
    assert (done.status_code, done.json()) == (200, {})
    data = b"".join(chunks)
    assert (gateway.destination / fresh_dir / "run" / "model.bin").read_bytes() == data
    deadline = time.monotonic() + 10
    while True:  # a completed object over 1 MiB is hashed after the answer, as a large PUT is
        head = requests.head(gateway.artifact_url(f"{fresh_dir}/run/model.bin"), timeout=30)
        if "Repr-Digest" in head.headers or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert head.headers["Repr-Digest"] == f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"
    assert list((gateway.destination / ".artifact-gateway-staging" / "mpu").iterdir()) == []
    audits = [
        line
        for line in gateway.log_lines()
        if line.get("msg") == "audit" and line["path"] == f"{fresh_dir}/run/model.bin"
    ]
    assert [(line["action"], line["size"], line["parts"]) for line in audits] == [("complete_multipart", len(data), 3)]


def test_windows_client_path_and_run_root(gateway: RunningGateway, fresh_dir: str) -> None:
    response = requests.post(
        f"{gateway.url}{MPU}/create/{fresh_dir}",
        json={"path": "C:\\Users\\me\\weights.bin", "num_parts": 1},
        timeout=30,
    )
    assert response.status_code == 200
    credential = response.json()["credentials"][0]
    etag = requests.put(credential["url"], data=b"w", timeout=30).headers["ETag"]
    requests.post(
        f"{gateway.url}{MPU}/complete/{fresh_dir}",
        timeout=30,
        json={
            "path": "C:\\Users\\me\\weights.bin",
            "upload_id": response.json()["upload_id"],
            "parts": [{"part_number": 1, "etag": etag}],
        },
    ).raise_for_status()
    assert (gateway.destination / fresh_dir / "weights.bin").read_bytes() == b"w"


def tamper(url: str) -> str:
    token = parse_qs(urlsplit(url).query)["token"][0]
    signature = token.split(".")[1]
    return url.replace(signature, ("A" if signature[0] != "A" else "B") + signature[1:])


def test_tampered_expired_or_missing_tokens_are_refused(gateway: RunningGateway, fresh_dir: str) -> None:
    created = create(gateway, fresh_dir, "t.bin", 1)
    url = created["credentials"][0]["url"]
    cases = {
        "tampered": tamper(url),
        "expired": f"{gateway.url}{MPU}/part?token="
        + sign(PartGrant(f"{fresh_dir}/t.bin", created["upload_id"], 1, int(time.time()) - 1), KEY.encode()),
        "other key": f"{gateway.url}{MPU}/part?token="
        + sign(PartGrant(f"{fresh_dir}/t.bin", created["upload_id"], 1, int(time.time()) + 60), b"wrong"),
        "missing": f"{gateway.url}{MPU}/part",
        "garbage": f"{gateway.url}{MPU}/part?token=!!!",
    }
    for name, target in cases.items():
        response = requests.put(target, data=b"evil", timeout=30)
        assert response.status_code == 403, name
        assert response.json()["error_code"] == "PERMISSION_DENIED"
    upload = gateway.destination / ".artifact-gateway-staging" / "mpu" / created["upload_id"]
    assert sorted(item.name for item in upload.iterdir()) == ["data", "upload.json"]  # no part stored
    assert (upload / "data").stat().st_size == 0


def test_a_forged_token_cannot_escape_the_destination(gateway: RunningGateway) -> None:
    token = sign(PartGrant("../outside.bin", "0" * 32, 1, int(time.time()) + 60), KEY.encode())
    response = requests.put(f"{gateway.url}{MPU}/part?token={token}", data=b"x", timeout=30)
    assert response.status_code == 400
    assert not (gateway.destination.parent / "outside.bin").exists()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "'path'"),
        ({"path": ""}, "'path'"),
        ({"path": "x.bin", "num_parts": -1}, "num_parts"),
        ({"path": "x.bin", "num_parts": 10001}, "num_parts"),
        ({"path": "x.bin", "num_parts": "3"}, "num_parts"),
        ({"path": "../../x.bin", "num_parts": 1}, None),
        ({"path": "..", "num_parts": 1}, "Invalid path"),
    ],
)
def test_create_rejects_bad_input(
    gateway: RunningGateway, fresh_dir: str, body: dict[str, object], fragment: str | None
) -> None:
    response = requests.post(f"{gateway.url}{MPU}/create/{fresh_dir}", json=body, timeout=30)
    if fragment is None:  # only the base name of the client's path counts: x.bin in fresh_dir
        assert response.status_code == 200
        return
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert fragment in response.json()["message"]


def test_create_rejects_non_json_body(gateway: RunningGateway, fresh_dir: str) -> None:
    json_type = {"Content-Type": "application/json"}
    response = requests.post(f"{gateway.url}{MPU}/create/{fresh_dir}", data=b"not json", headers=json_type, timeout=30)
    assert response.status_code == 400
    assert "JSON object" in response.json()["message"]
    body = json.dumps({"path": "x.bin", "num_parts": 1})
    untyped = requests.post(f"{gateway.url}{MPU}/create/{fresh_dir}", data=body, timeout=30)  # not sent as JSON
    assert untyped.status_code == 400
    assert untyped.json()["message"] == "Bad Request. Content-Type must be one of ['application/json']."


def test_complete_with_missing_or_wrong_parts_is_400_and_stores_nothing(
    gateway: RunningGateway, fresh_dir: str
) -> None:
    created = create(gateway, fresh_dir, "c.bin", 2)
    etag = requests.put(created["credentials"][0]["url"], data=b"one", timeout=30).headers["ETag"]
    complete = f"{gateway.url}{MPU}/complete/{fresh_dir}"
    for parts, fragment in [
        ([{"part_number": 1, "etag": etag}, {"part_number": 2, "etag": etag}], "part 2"),
        ([{"part_number": 1, "etag": '"' + "f" * 64 + '"'}], "part 1"),
        ([], "'parts'"),
        ([{"part_number": "1", "etag": etag}], "part_number"),
        ([{"part_number": 1, "etag": etag}, {"part_number": 1, "etag": etag}], "twice"),
    ]:
        response = requests.post(
            complete, json={"path": "c.bin", "upload_id": created["upload_id"], "parts": parts}, timeout=30
        )
        assert response.status_code == 400, parts
        assert fragment in response.json()["message"]
    assert not (gateway.destination / fresh_dir / "c.bin").exists()
    unknown = requests.post(
        complete, json={"path": "c.bin", "upload_id": "f" * 32, "parts": [{"part_number": 1, "etag": etag}]}, timeout=30
    )
    assert unknown.status_code == 404
    assert (
        requests.post(
            complete, json={"path": "c.bin", "parts": [{"part_number": 1, "etag": etag}]}, timeout=30
        ).status_code
        == 400
    )


def test_abort_discards_parts(gateway: RunningGateway, fresh_dir: str) -> None:
    created = create(gateway, fresh_dir, "a.bin", 1)
    requests.put(created["credentials"][0]["url"], data=b"part", timeout=30).raise_for_status()
    abort = {"path": "a.bin", "upload_id": created["upload_id"]}
    for _ in range(2):  # idempotent
        response = requests.post(f"{gateway.url}{MPU}/abort/{fresh_dir}", json=abort, timeout=30)
        assert (response.status_code, response.json()) == (200, {})
    assert not (gateway.destination / ".artifact-gateway-staging" / "mpu" / created["upload_id"]).exists()
    late = requests.put(created["credentials"][0]["url"], data=b"late", timeout=30)
    assert late.status_code == 404


def test_part_urls_work_on_every_worker(tmp_path: Path) -> None:
    with run_gateway(tmp_path, "--workers", "2", "--signing-key", KEY) as two:
        created = create(two, "w", "big.bin", 12)
        etags = []
        for credential in created["credentials"]:  # new connections land on either worker
            response = requests.put(
                credential["url"],
                data=bytes([credential["part_number"]]) * 1000,
                headers={"Connection": "close"},
                timeout=30,
            )
            etags.append({"part_number": credential["part_number"], "etag": response.headers["ETag"]})
        requests.post(
            f"{two.url}{MPU}/complete/w",
            json={"path": "big.bin", "upload_id": created["upload_id"], "parts": etags},
            timeout=30,
        ).raise_for_status()
        assert (two.destination / "w" / "big.bin").read_bytes() == b"".join(bytes([n]) * 1000 for n in range(1, 13))


def test_multipart_off_answers_the_exact_fallback_501(tmp_path: Path) -> None:
    with run_gateway(tmp_path, "--multipart-upload", "off") as off:
        for action in ("create", "complete", "abort"):
            response = requests.post(f"{off.url}{MPU}/{action}/x", json={"path": "big.bin", "num_parts": 2}, timeout=30)
            assert response.status_code == 501
            assert response.json() == {
                "error_code": "NOT_IMPLEMENTED",
                "message": "Multipart upload is not supported for the current artifact repository",
            }
        info = requests.get(f"{off.url}/api/3.0/mlflow/server-info", timeout=30).json()
        assert info["multipart_uploads_enabled"] is False


def test_presigned_download_is_501_on_local_disk(gateway: RunningGateway) -> None:
    response = requests.get(f"{gateway.url}/api/2.0/mlflow-artifacts/presigned/a/b.txt", timeout=30)
    assert response.status_code == 501
    assert response.json()["message"].startswith("Multipart download is not supported")
