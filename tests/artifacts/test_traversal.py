"""MLflow's published path-traversal payloads against every artifact route: always 400, nothing touched.

The payloads follow the shapes of MLflow's artifact-path CVEs (CVE-2023-1177, -2780, -6015, -6018,
-6831, -6909, CVE-2024-1483, -1558, -1594, -2928, -3573, -3848 and later bypasses): raw and
percent-encoded `..`, double and triple encoding, absolute POSIX and Windows paths, backslashes,
`file:` URIs, `#`/`?` used to hide a suffix, `;` path-parameter smuggling, NUL and control bytes,
overlong UTF-8. Each targets a canary directory beside the destination, so a miss would show.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.conftest import tree_snapshot
from tests.gateway_process import ARTIFACTS, RunningGateway

CANARY = b"canary: must never be read, overwritten or deleted"

# Raw URL text placed after `/artifacts/` ({abs} is the absolute canary dir without its leading '/').
URL_PAYLOADS = [
    "../outside/canary.txt",
    "../../outside/canary.txt",
    "a/../../outside/canary.txt",
    "..%2Foutside%2Fcanary.txt",
    "%2E%2E/outside/canary.txt",
    "%2e%2e%2foutside%2fcanary.txt",
    "%252E%252E/outside/canary.txt",
    "%252e%252e%252foutside%252fcanary.txt",
    "%25252E%25252E/outside/canary.txt",
    "..%252Foutside%252Fcanary.txt",
    ".%2E/outside/canary.txt",
    "%2E./outside/canary.txt",
    "./../outside/canary.txt",
    "a/./b.txt",
    "....//outside/canary.txt",
    ".../outside/canary.txt",
    "/{abs}/canary.txt",
    "%2F{abs}%2Fcanary.txt",
    "file:///{abs}/canary.txt",
    "file:%2F%2F%2F{abs}%2Fcanary.txt",
    "FILE://localhost/{abs}/canary.txt",
    "C:%5Cwindows%5Cwin.ini",
    "C:/windows/win.ini",
    "..%5Coutside%5Ccanary.txt",
    "%5C%5Cserver%5Cshare%5Ccanary.txt",
    "..\\outside\\canary.txt",
    "top.txt%23/../../outside/canary.txt",
    "canary.txt%23frag",
    "x%3F/../../outside/canary.txt",
    "..;/outside/canary.txt",
    "a/..;/..;/outside/canary.txt",
    ".;x/../outside/canary.txt",
    "%00/../outside/canary.txt",
    "a%00.txt",
    "a%0Ab.txt",
    "a%7Fb.txt",
    "%C0%AE%C0%AE/outside/canary.txt",
    "..%C0%AFoutside%C0%AFcanary.txt",
    "%FF.txt",
    "a//b.txt",
]


@pytest.fixture(scope="module")
def outside(gateway: RunningGateway) -> Path:
    directory = gateway.destination.parent / "outside"
    directory.mkdir(exist_ok=True)
    (directory / "canary.txt").write_bytes(CANARY)
    return directory


def _target(payload: str, outside: Path) -> str:
    return f"{ARTIFACTS}/{payload.replace('{abs}', str(outside).lstrip('/'))}"


@pytest.mark.parametrize("payload", URL_PAYLOADS)
@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_url_payload_is_400_and_touches_nothing(
    gateway: RunningGateway, outside: Path, method: str, payload: str
) -> None:
    before_outside, before_dest = tree_snapshot(outside.parent), tree_snapshot(gateway.destination)
    body = b"overwritten!" if method == "PUT" else None
    status, _, content = gateway.raw_request(method, _target(payload, outside), body)
    assert status == 400, (status, content)
    if method != "HEAD":
        error = json.loads(content)
        assert error["error_code"] == "INVALID_PARAMETER_VALUE"
        assert error["message"].startswith("Invalid path")
    assert CANARY not in content
    assert tree_snapshot(outside.parent) == before_outside
    assert tree_snapshot(gateway.destination) == before_dest


@pytest.mark.parametrize("payload", URL_PAYLOADS)
def test_listing_payload_is_400(gateway: RunningGateway, outside: Path, payload: str) -> None:
    text = payload.replace("{abs}", str(outside).lstrip("/"))
    status, _, content = gateway.raw_request("GET", f"{ARTIFACTS}?path={quote(text, safe='%')}")
    assert status == 400, (status, content)
    assert json.loads(content)["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    "encoded_route", ["/api/2.0/mlflow%2Dartifacts/artifacts/x.txt", "/api/2.0/mlflow-artifacts/%61rtifacts/x.txt"]
)
def test_percent_encoded_route_is_refused(gateway: RunningGateway, encoded_route: str) -> None:
    status, _, content = gateway.raw_request("PUT", encoded_route, b"x")
    assert status in (400, 404), content
    assert not (gateway.destination / "x.txt").exists()


def test_symlink_out_of_the_destination_is_not_followed(gateway: RunningGateway, outside: Path) -> None:
    link = gateway.destination / "escape"
    if not link.is_symlink():
        link.symlink_to(outside)
    before = tree_snapshot(outside)
    for method, body in [("GET", None), ("HEAD", None), ("PUT", b"planted"), ("DELETE", None)]:
        for target in (f"{ARTIFACTS}/escape/canary.txt", f"{ARTIFACTS}/escape/new/planted.txt"):
            status, _, content = gateway.raw_request(method, target, body)
            assert status == 400, (method, target, status, content)
            assert CANARY not in content
    status, _, content = gateway.raw_request("GET", f"{ARTIFACTS}?path=escape")
    assert status == 400
    assert b"canary" not in content
    status, _, content = gateway.raw_request("GET", "/api/2.0/mlflow-artifacts/archive/escape")
    assert status == 400, content
    # The root holds the link: its archive leaves the link out (links are never followed) and is whole.
    with requests.get(f"{gateway.url}/api/2.0/mlflow-artifacts/archive", timeout=30) as response:
        root_archive = response.content
    if response.status_code == 200:
        names = zipfile.ZipFile(io.BytesIO(root_archive)).namelist()
        assert not any(name.startswith("artifacts/escape") for name in names), names
    else:
        assert response.status_code == 404  # nothing but the link at the root: nothing to archive
    assert CANARY not in root_archive
    assert tree_snapshot(outside) == before
    assert os.path.islink(link)


def test_dot_dot_inside_a_name_is_allowed(gateway: RunningGateway) -> None:
    """Only whole `..` segments are traversal; names like `model..v2.bin` are ordinary."""
    status, _, _ = gateway.raw_request("PUT", f"{ARTIFACTS}/names/model..v2.bin", b"ok")
    assert status == 200
    assert (gateway.destination / "names" / "model..v2.bin").read_bytes() == b"ok"
