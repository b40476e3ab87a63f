"""Every change to stored artifacts leaves one audit line; an unauthenticated public listener warns."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import requests

from tests.gateway_process import RunningGateway, run_gateway


def audit_lines(gateway: RunningGateway, path_prefix: str) -> list[dict[str, object]]:
    return [
        line
        for line in gateway.log_lines()
        if line.get("msg") == "audit" and str(line.get("path", "")).startswith(path_prefix)
    ]


def test_put_and_delete_are_audited(gateway: RunningGateway, fresh_dir: str) -> None:
    data = b"audited bytes"
    put = requests.put(gateway.artifact_url(f"{fresh_dir}/a.txt"), data=data, headers={"X-Request-Id": "audit-put-1"})
    assert put.status_code == 200
    refused = requests.put(gateway.artifact_url(f"{fresh_dir}/"), data=data)
    assert refused.status_code == 400
    deleted = requests.delete(gateway.artifact_url(fresh_dir))
    assert deleted.status_code == 200
    lines = audit_lines(gateway, fresh_dir)
    assert [(line["action"], line["path"]) for line in lines] == [("put", f"{fresh_dir}/a.txt"), ("delete", fresh_dir)]
    assert lines[0]["size"] == len(data)
    assert lines[0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert lines[0]["request_id"] == "audit-put-1"
    assert lines[0]["remote"] == "127.0.0.1"


def test_a_public_listener_without_auth_warns(tmp_path: Path) -> None:
    with run_gateway(tmp_path, "--host", "0.0.0.0") as public:
        warnings = [line for line in public.log_lines() if line.get("level") == "warning"]
    assert len(warnings) == 1
    assert "without authentication" in str(warnings[0]["msg"])
    assert warnings[0]["host"] == "0.0.0.0"


def test_a_loopback_listener_does_not_warn(gateway: RunningGateway) -> None:
    assert not [line for line in gateway.log_lines() if line.get("level") == "warning"], json.dumps(
        gateway.log_lines()[:3]
    )
