"""The artifact proxy API over real HTTP against a real server on local disk."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests

from tests.gateway_process import ARTIFACTS, RunningGateway, run_gateway


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def put(gateway: RunningGateway, path: str, data: bytes, **kwargs: object) -> requests.Response:
    return requests.put(gateway.artifact_url(path), data=data, timeout=30, **kwargs)  # type: ignore[arg-type]


def recorded_digest(gateway: RunningGateway, path: str, timeout: float = 30.0) -> requests.Response:
    """HEAD `path` until it carries a Repr-Digest: a large upload is hashed just after its answer."""
    deadline = time.monotonic() + timeout
    while True:
        head = requests.head(gateway.artifact_url(path), timeout=30)
        if "Repr-Digest" in head.headers or time.monotonic() > deadline:
            return head
        time.sleep(0.05)


def assert_mlflow_error(response: requests.Response, status: int, code: str, fragment: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code
    assert fragment in body["message"]


# -- upload -------------------------------------------------------------------------------------


def test_put_streams_body_to_disk_and_answers_the_digest_asked_for(gateway: RunningGateway, fresh_dir: str) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    response = put(gateway, f"{fresh_dir}/nested/deeper/model.bin", data, headers={"Want-Repr-Digest": "sha-256=1"})
    assert response.status_code == 200
    digest = hashlib.sha256(data).hexdigest()
    assert response.json() == {"path": f"{fresh_dir}/nested/deeper/model.bin", "file_size": len(data), "sha256": digest}
    assert response.headers["Repr-Digest"] == f"sha-256=:{sha256_b64(data)}:"
    assert (gateway.destination / fresh_dir / "nested/deeper/model.bin").read_bytes() == data


def test_put_chunked_body_without_content_length(gateway: RunningGateway, fresh_dir: str) -> None:
    parts = [os.urandom(100_000) for _ in range(7)]
    response = requests.put(gateway.artifact_url(f"{fresh_dir}/chunked.bin"), data=iter(parts), timeout=30)
    assert response.status_code == 200
    assert (gateway.destination / fresh_dir / "chunked.bin").read_bytes() == b"".join(parts)


def test_put_empty_body_creates_empty_file_and_overwrite_replaces(gateway: RunningGateway, fresh_dir: str) -> None:
    assert put(gateway, f"{fresh_dir}/f.txt", b"first version").status_code == 200
    assert put(gateway, f"{fresh_dir}/f.txt", b"").status_code == 200
    assert (gateway.destination / fresh_dir / "f.txt").read_bytes() == b""
    assert put(gateway, f"{fresh_dir}/f.txt", b"third").status_code == 200
    assert requests.get(gateway.artifact_url(f"{fresh_dir}/f.txt"), timeout=30).content == b"third"


def test_put_stores_form_bodies_verbatim_and_ignores_content_type(gateway: RunningGateway, fresh_dir: str) -> None:
    body = b'--xyz\r\nContent-Disposition: form-data; name="f"\r\n\r\nabc\r\n--xyz--\r\n'
    response = put(
        gateway, f"{fresh_dir}/form.bin", body, headers={"Content-Type": "multipart/form-data; boundary=xyz"}
    )
    assert response.status_code == 200
    assert (gateway.destination / fresh_dir / "form.bin").read_bytes() == body


def test_put_with_gzip_content_encoding_stores_raw_bytes(gateway: RunningGateway, fresh_dir: str) -> None:
    raw = b"\x1f\x8b not really gzip"
    assert put(gateway, f"{fresh_dir}/x.gz", raw, headers={"Content-Encoding": "gzip"}).status_code == 200
    assert (gateway.destination / fresh_dir / "x.gz").read_bytes() == raw


def test_ajax_prefix_serves_the_same_api(gateway: RunningGateway, fresh_dir: str) -> None:
    url = f"{gateway.url}/ajax-api/2.0/mlflow-artifacts/artifacts/{fresh_dir}/a.txt"
    assert requests.put(url, data=b"ajax", timeout=30).status_code == 200
    assert requests.get(url, timeout=30).content == b"ajax"
    listing = requests.get(
        f"{gateway.url}/ajax-api/2.0/mlflow-artifacts/artifacts", params={"path": fresh_dir}, timeout=30
    )
    assert listing.json() == {"files": [{"path": "a.txt", "is_dir": False, "file_size": 4}]}
    assert requests.delete(url, timeout=30).json() == {}
    assert not (gateway.destination / fresh_dir / "a.txt").exists()


@pytest.mark.parametrize("suffix", ["/", ""])
def test_put_without_file_name_is_400_and_stores_nothing(gateway: RunningGateway, fresh_dir: str, suffix: str) -> None:
    target = f"{ARTIFACTS}/{fresh_dir}/dir2{suffix}" if suffix else f"{ARTIFACTS}/"
    status, _, body = gateway.raw_request("PUT", target, b"data")
    assert status == 400
    assert json.loads(body) == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Artifact path must include a filename (cannot end with '/').",
        "sqlstate": "KAM00",
        "error_class": "INVALID_PARAMETER_VALUE",
    }
    assert not (gateway.destination / fresh_dir).exists()


def test_put_where_parent_is_a_file_is_400_and_leaves_no_directories(gateway: RunningGateway, fresh_dir: str) -> None:
    assert put(gateway, f"{fresh_dir}/file.txt", b"x").status_code == 200
    response = put(gateway, f"{fresh_dir}/file.txt/child/leaf.txt", b"y")
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE", "file is in the way")
    assert (gateway.destination / fresh_dir / "file.txt").read_bytes() == b"x"


def test_put_over_a_directory_is_400_and_keeps_the_directory(gateway: RunningGateway, fresh_dir: str) -> None:
    assert put(gateway, f"{fresh_dir}/d/inner.txt", b"x").status_code == 200
    response = put(gateway, f"{fresh_dir}/d", b"y")
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE", "collides")
    assert (gateway.destination / fresh_dir / "d" / "inner.txt").read_bytes() == b"x"


def test_put_into_reserved_staging_directory_is_400(gateway: RunningGateway) -> None:
    response = put(gateway, ".artifact-gateway-staging/evil.part", b"x")
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE", "reserved")
    assert not (gateway.destination / ".artifact-gateway-staging" / "evil.part").exists()


# -- integrity ---------------------------------------------------------------------------------


def test_matching_repr_digest_and_content_md5_are_accepted(gateway: RunningGateway, fresh_dir: str) -> None:
    data = b"verified bytes" * 1000
    headers = {
        "Repr-Digest": f"sha-512=:AAAA:, sha-256=:{sha256_b64(data)}:",
        "Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode(),
    }
    assert put(gateway, f"{fresh_dir}/ok.bin", data, headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("header", "value_for", "fragment"),
    [
        ("Repr-Digest", lambda d: f"sha-256=:{sha256_b64(d + b'x')}:", "does not match"),
        ("Content-MD5", lambda d: base64.b64encode(hashlib.md5(d + b"x").digest()).decode(), "does not match"),
        ("Content-MD5", lambda d: "not-base64!", "16-byte"),
        ("Repr-Digest", lambda d: "sha-256=abc", "RFC 9530"),
        ("Repr-Digest", lambda d: "sha-512=:AAAA:", "no sha-256"),
        ("Repr-Digest", lambda d: "sha-256=:AAAA:", "32-byte"),
    ],
)
def test_digest_mismatch_or_malformed_is_400_and_nothing_is_stored(
    gateway: RunningGateway, fresh_dir: str, header: str, value_for: object, fragment: str
) -> None:
    data = os.urandom(2 * 1024 * 1024)
    assert put(gateway, f"{fresh_dir}/keep.bin", b"old").status_code == 200
    response = put(gateway, f"{fresh_dir}/keep.bin", data, headers={header: value_for(data)})  # type: ignore[operator]
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE", fragment)
    assert (gateway.destination / fresh_dir / "keep.bin").read_bytes() == b"old"
    response = put(gateway, f"{fresh_dir}/new/never.bin", data, headers={header: value_for(data)})  # type: ignore[operator]
    assert response.status_code == 400
    assert not (gateway.destination / fresh_dir / "new").exists()
    assert list((gateway.destination / ".artifact-gateway-staging").iterdir()) == []


# -- download ----------------------------------------------------------------------------------


def test_get_returns_bytes_with_mlflow_headers_and_digest(gateway: RunningGateway, fresh_dir: str) -> None:
    data = os.urandom(5 * 1024 * 1024 + 3)
    etag = put(gateway, f"{fresh_dir}/weights.bin", data).headers["ETag"]
    recorded_digest(gateway, f"{fresh_dir}/weights.bin")
    response = requests.get(gateway.artifact_url(f"{fresh_dir}/weights.bin"), timeout=30)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == "attachment; filename=weights.bin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["ETag"] == etag
    assert response.headers["Repr-Digest"] == f"sha-256=:{sha256_b64(data)}:"
    assert "Last-Modified" in response.headers


def test_a_large_upload_is_answered_before_it_is_hashed_unless_the_digest_is_asked_for(
    gateway: RunningGateway, fresh_dir: str
) -> None:
    data = os.urandom(3 * 1024 * 1024)
    answered = put(gateway, f"{fresh_dir}/later.bin", data)
    assert answered.status_code == 200
    assert answered.json() == {"path": f"{fresh_dir}/later.bin", "file_size": len(data), "sha256": None}
    assert "Repr-Digest" not in answered.headers
    head = recorded_digest(gateway, f"{fresh_dir}/later.bin")
    assert head.headers["Repr-Digest"] == f"sha-256=:{sha256_b64(data)}:"
    assert head.headers["ETag"] == answered.headers["ETag"]  # the digest does not change the validator
    asked = put(gateway, f"{fresh_dir}/now.bin", data, headers={"Want-Repr-Digest": "sha-256=1"})
    assert asked.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert asked.headers["Repr-Digest"] == f"sha-256=:{sha256_b64(data)}:"
    small = put(gateway, f"{fresh_dir}/small.bin", data[:1000])
    assert small.json()["sha256"] == hashlib.sha256(data[:1000]).hexdigest()


@pytest.mark.parametrize(
    ("name", "content_type", "disposition"),
    [
        ("MLmodel", "text/plain", "attachment; filename=MLmodel"),
        ("conda.yaml", "text/plain", "attachment; filename=conda.yaml"),
        ("metrics.json", "text/plain", "attachment; filename=metrics.json"),
        ("image.png", "image/png", "attachment; filename=image.png"),
        ("a b;c.txt", "text/plain", 'attachment; filename="a b;c.txt"'),
        ("日本.txt", "text/plain", "attachment; filename=.txt; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"),
        ("noext", "application/octet-stream", "attachment; filename=noext"),
    ],
)
def test_content_type_and_disposition_follow_mlflow(
    gateway: RunningGateway, fresh_dir: str, name: str, content_type: str, disposition: str
) -> None:
    assert put(gateway, f"{fresh_dir}/{name}", b"content").status_code == 200
    for method in ("GET", "HEAD"):
        response = requests.request(method, gateway.artifact_url(f"{fresh_dir}/{name}"), timeout=30)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == content_type
        assert response.headers["Content-Disposition"] == disposition


def test_head_matches_get_without_body(gateway: RunningGateway, fresh_dir: str) -> None:
    put(gateway, f"{fresh_dir}/h.bin", b"0123456789")
    get = requests.get(gateway.artifact_url(f"{fresh_dir}/h.bin"), timeout=30)
    head = requests.head(gateway.artifact_url(f"{fresh_dir}/h.bin"), timeout=30)
    assert head.status_code == 200
    assert head.content == b""
    for name in ("Content-Length", "ETag", "Last-Modified", "Repr-Digest", "Content-Type", "Content-Disposition"):
        assert head.headers[name] == get.headers[name]


def test_missing_object_is_404_json_for_get_and_head(gateway: RunningGateway, fresh_dir: str) -> None:
    response = requests.get(gateway.artifact_url(f"{fresh_dir}/missing.txt"), timeout=30)
    assert_mlflow_error(response, 404, "RESOURCE_DOES_NOT_EXIST", f"'{fresh_dir}/missing.txt'")
    assert requests.head(gateway.artifact_url(f"{fresh_dir}/missing.txt"), timeout=30).status_code == 404


def test_get_of_a_directory_is_400_json(gateway: RunningGateway, fresh_dir: str) -> None:
    put(gateway, f"{fresh_dir}/d/f.txt", b"x")
    response = requests.get(gateway.artifact_url(f"{fresh_dir}/d"), timeout=30)
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE", "refers to a directory")
    assert requests.head(gateway.artifact_url(f"{fresh_dir}/d"), timeout=30).status_code == 400


@pytest.mark.parametrize(
    ("range_header", "status", "expected", "content_range"),
    [
        ("bytes=0-4", 206, b"01234", "bytes 0-4/10"),
        ("bytes=7-", 206, b"789", "bytes 7-9/10"),
        ("bytes=-3", 206, b"789", "bytes 7-9/10"),
        ("bytes=5-100", 206, b"56789", "bytes 5-9/10"),
        ("bytes=-100", 206, b"0123456789", "bytes 0-9/10"),
        ("bytes=0-1,4-5", 200, b"0123456789", None),
        ("bytes=5-2", 200, b"0123456789", None),
        ("items=0-1", 200, b"0123456789", None),
    ],
)
def test_single_range_requests(
    gateway: RunningGateway, fresh_dir: str, range_header: str, status: int, expected: bytes, content_range: str | None
) -> None:
    put(gateway, f"{fresh_dir}/r.bin", b"0123456789")
    response = requests.get(gateway.artifact_url(f"{fresh_dir}/r.bin"), headers={"Range": range_header}, timeout=30)
    assert response.status_code == status
    assert response.content == expected
    assert response.headers.get("Content-Range") == content_range
    assert response.headers["Content-Length"] == str(len(expected))


@pytest.mark.parametrize("range_header", ["bytes=10-", "bytes=10-20", "bytes=-0"])
def test_unsatisfiable_range_is_416(gateway: RunningGateway, fresh_dir: str, range_header: str) -> None:
    put(gateway, f"{fresh_dir}/r.bin", b"0123456789")
    response = requests.get(gateway.artifact_url(f"{fresh_dir}/r.bin"), headers={"Range": range_header}, timeout=30)
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */10"


def test_range_on_a_large_file_returns_exact_slice(gateway: RunningGateway, fresh_dir: str) -> None:
    data = os.urandom(4 * 1024 * 1024)
    put(gateway, f"{fresh_dir}/big.bin", data)
    start, end = 1_000_003, 3_500_007
    response = requests.get(
        gateway.artifact_url(f"{fresh_dir}/big.bin"), headers={"Range": f"bytes={start}-{end}"}, timeout=30
    )
    assert response.status_code == 206
    assert response.content == data[start : end + 1]


def test_conditional_requests(gateway: RunningGateway, fresh_dir: str) -> None:
    put(gateway, f"{fresh_dir}/c.txt", b"conditional")
    url = gateway.artifact_url(f"{fresh_dir}/c.txt")
    first = requests.get(url, timeout=30)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert requests.get(url, headers={"If-None-Match": etag}, timeout=30).status_code == 304
    assert requests.get(url, headers={"If-None-Match": f"W/{etag}"}, timeout=30).status_code == 304
    assert requests.get(url, headers={"If-None-Match": '"other"'}, timeout=30).status_code == 200
    assert requests.get(url, headers={"If-Modified-Since": modified}, timeout=30).status_code == 304
    past = format_datetime(datetime.now(UTC) - timedelta(days=1), usegmt=True)
    assert requests.get(url, headers={"If-Modified-Since": past}, timeout=30).status_code == 200
    assert requests.get(url, headers={"If-Match": etag}, timeout=30).status_code == 200
    assert requests.get(url, headers={"If-Match": '"other"'}, timeout=30).status_code == 412
    assert requests.get(url, headers={"If-Unmodified-Since": past}, timeout=30).status_code == 412
    stale = requests.get(url, headers={"Range": "bytes=0-3", "If-Range": '"stale"'}, timeout=30)
    assert (stale.status_code, stale.content) == (200, b"conditional")
    fresh = requests.get(url, headers={"Range": "bytes=0-3", "If-Range": etag}, timeout=30)
    assert (fresh.status_code, fresh.content) == (206, b"cond")


def test_etag_changes_when_content_changes(gateway: RunningGateway, fresh_dir: str) -> None:
    put(gateway, f"{fresh_dir}/e.txt", b"one")
    first = requests.head(gateway.artifact_url(f"{fresh_dir}/e.txt"), timeout=30).headers["ETag"]
    put(gateway, f"{fresh_dir}/e.txt", b"two")
    assert requests.head(gateway.artifact_url(f"{fresh_dir}/e.txt"), timeout=30).headers["ETag"] != first


def test_file_written_outside_the_gateway_is_served_without_digest(gateway: RunningGateway, fresh_dir: str) -> None:
    target = gateway.destination / fresh_dir / "external.txt"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"placed by hand")
    response = requests.get(gateway.artifact_url(f"{fresh_dir}/external.txt"), timeout=30)
    assert response.content == b"placed by hand"
    assert "Repr-Digest" not in response.headers
    put(gateway, f"{fresh_dir}/edited.txt", b"original")
    (gateway.destination / fresh_dir / "edited.txt").write_bytes(b"edited by hand!")
    response = requests.get(gateway.artifact_url(f"{fresh_dir}/edited.txt"), timeout=30)
    assert response.content == b"edited by hand!"
    assert "Repr-Digest" not in response.headers  # the recorded digest no longer applies


# -- listing -----------------------------------------------------------------------------------


def list_path(gateway: RunningGateway, path: str | None, **params: object) -> requests.Response:
    query = {**({"path": path} if path is not None else {}), **params}
    return requests.get(f"{gateway.url}{ARTIFACTS}", params=query, timeout=30)


def test_listing_is_one_level_sorted_with_sizes_on_files_only(gateway: RunningGateway, fresh_dir: str) -> None:
    for name, data in [("b.txt", b"bb"), ("a/x.txt", b"x"), ("c/d/e.txt", b"e"), ("top.txt", b"0123456789")]:
        put(gateway, f"{fresh_dir}/{name}", data)
    expected = {
        "files": [
            {"path": "a", "is_dir": True},
            {"path": "b.txt", "is_dir": False, "file_size": 2},
            {"path": "c", "is_dir": True},
            {"path": "top.txt", "is_dir": False, "file_size": 10},
        ]
    }
    assert list_path(gateway, fresh_dir).json() == expected
    assert list_path(gateway, f"{fresh_dir}/").json() == expected


def test_listing_of_missing_path_or_file_is_empty_object(gateway: RunningGateway, fresh_dir: str) -> None:
    put(gateway, f"{fresh_dir}/only.txt", b"x")
    assert list_path(gateway, f"{fresh_dir}/only.txt").json() == {}
    assert list_path(gateway, f"{fresh_dir}/nope").json() == {}


def test_listing_root_hides_staging_directory(gateway: RunningGateway, fresh_dir: str) -> None:
    put(gateway, f"{fresh_dir}/x.txt", b"x")
    assert (gateway.destination / ".artifact-gateway-staging").is_dir()
    for root in (None, ""):
        names = [entry["path"] for entry in list_path(gateway, root).json()["files"]]
        assert fresh_dir in names
        assert ".artifact-gateway-staging" not in names


@pytest.mark.parametrize("bad", ["/etc", "../x", "a/../../b", "a\\b", "%2e%2e/x"])
def test_listing_rejects_bad_paths(gateway: RunningGateway, bad: str) -> None:
    assert_mlflow_error(list_path(gateway, bad), 400, "INVALID_PARAMETER_VALUE", "Invalid path")


def test_listing_pages_with_max_results_and_page_token(gateway: RunningGateway, fresh_dir: str) -> None:
    directory = gateway.destination / fresh_dir
    directory.mkdir()
    names = [f"f{i:04d}.txt" for i in range(2500)]
    for name in names:
        (directory / name).write_bytes(b"z")
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params: dict[str, object] = {"max_results": 1000, **({"page_token": token} if token else {})}
        body = list_path(gateway, fresh_dir, **params).json()
        seen += [entry["path"] for entry in body["files"]]
        pages += 1
        token = body.get("next_page_token")
        if token is None:
            break
    assert pages == 3
    assert seen == names
    unpaged = list_path(gateway, fresh_dir).json()
    assert [entry["path"] for entry in unpaged["files"]] == names
    assert "next_page_token" not in unpaged


async def test_a_page_of_a_listing_closes_the_listing_when_it_answers(tmp_path: Path) -> None:
    """Called directly: the garbage collector would close it soon anyway, just not deterministically."""
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from gateway.artifacts.api import list_artifacts
    from gateway.http.app_keys import REPOSITORY_KEY
    from tests.listings import CountingListings

    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    repository = CountingListings.open(tmp_path)
    app = web.Application()
    app[REPOSITORY_KEY] = repository
    request = make_mocked_request("GET", f"{ARTIFACTS}?max_results=2", app=app)
    response = await list_artifacts(request)
    assert isinstance(response, web.Response) and response.text is not None
    assert [entry["path"] for entry in json.loads(response.text)["files"]] == ["a.txt", "b.txt"]
    assert repository.unfinished == 0


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"max_results": "0"}, "max_results"),
        ({"max_results": "abc"}, "max_results"),
        ({"max_results": "10001"}, "max_results"),
        ({"max_results": "²"}, "max_results"),  # str.isdigit() says yes, int() says no: was a 500
        ({"max_results": "9" * 5000}, "max_results"),  # past int()'s 4,300 digits: was a 500
        ({"page_token": "garbage!!"}, "page_token"),
    ],
)
def test_listing_rejects_bad_paging_parameters(
    gateway: RunningGateway, fresh_dir: str, params: dict[str, str], fragment: str
) -> None:
    assert_mlflow_error(list_path(gateway, fresh_dir, **params), 400, "INVALID_PARAMETER_VALUE", fragment)


# -- delete ------------------------------------------------------------------------------------


def test_delete_is_recursive_and_idempotent(gateway: RunningGateway, fresh_dir: str) -> None:
    for name in ("tree/a.txt", "tree/sub/b.txt", "keep.txt"):
        put(gateway, f"{fresh_dir}/{name}", b"x")
    response = requests.delete(gateway.artifact_url(f"{fresh_dir}/tree/"), timeout=30)
    assert (response.status_code, response.json()) == (200, {})
    assert not (gateway.destination / fresh_dir / "tree").exists()
    assert (gateway.destination / fresh_dir / "keep.txt").exists()
    again = requests.delete(gateway.artifact_url(f"{fresh_dir}/tree"), timeout=30)
    assert (again.status_code, again.json()) == (200, {})
    assert requests.delete(gateway.artifact_url(f"{fresh_dir}/keep.txt"), timeout=30).status_code == 200
    assert not (gateway.destination / fresh_dir / "keep.txt").exists()


def test_delete_of_the_root_is_refused(gateway: RunningGateway, fresh_dir: str) -> None:
    put(gateway, f"{fresh_dir}/survivor.txt", b"x")
    status, _, body = gateway.raw_request("DELETE", f"{ARTIFACTS}/")
    assert status == 400
    assert "whole artifact destination" in json.loads(body)["message"]
    assert (gateway.destination / fresh_dir / "survivor.txt").exists()


def test_delete_of_a_symlink_removes_the_link_not_its_target(gateway: RunningGateway, fresh_dir: str) -> None:
    put(gateway, f"{fresh_dir}/real/data.txt", b"keep me")
    (gateway.destination / fresh_dir / "link").symlink_to(gateway.destination / fresh_dir / "real")
    assert requests.delete(gateway.artifact_url(f"{fresh_dir}/link"), timeout=30).status_code == 200
    assert not (gateway.destination / fresh_dir / "link").exists()
    assert (gateway.destination / fresh_dir / "real/data.txt").read_bytes() == b"keep me"


# -- other routes ------------------------------------------------------------------------------


def test_server_info_health_and_version(gateway: RunningGateway) -> None:
    import gateway as package

    for prefix in ("/api/3.0/mlflow", "/ajax-api/3.0/mlflow"):
        info = requests.get(f"{gateway.url}{prefix}/server-info", timeout=30).json()
        # Local disk: one streamed PUT is faster than parts (the routes work; --local-multipart-uploads offers them)
        assert info["multipart_uploads_enabled"] is False
        assert info["multipart_downloads_enabled"] is False  # local disk cannot presign
        assert info["artifact_gateway"]["mode"] == "proxied"
        assert info["artifact_gateway"]["version"] == package.__version__
        assert info["features_enabled"] == {"gateway": False}  # MLflow's AI gateway is not served
    assert requests.get(f"{gateway.url}/health", timeout=30).text == "OK"
    version = requests.get(f"{gateway.url}/version", timeout=30)
    assert version.text == "3.17.2"  # the MLflow protocol served: the stock client gates log_spans on it
    assert version.headers["X-Artifact-Gateway-Version"] == package.__version__


def test_unserved_features_are_named_in_their_404(gateway: RunningGateway) -> None:
    cases = {
        ("POST", "/api/3.0/mlflow/traces/metrics"): "Trace metrics",
        ("GET", "/api/2.0/endpoints/"): "AI gateway",
    }
    for (method, path), feature in cases.items():
        response = requests.request(method, f"{gateway.url}{path}", json={}, timeout=30)
        assert_mlflow_error(response, 404, "ENDPOINT_NOT_FOUND", feature)
        assert "not served by this server" in response.json()["message"]


def test_unknown_route_is_404_json(gateway: RunningGateway) -> None:
    response = requests.get(f"{gateway.url}/no/such/route", timeout=30)
    assert_mlflow_error(response, 404, "ENDPOINT_NOT_FOUND", "/no/such/route")


def test_wrong_method_is_405_json_with_allow(gateway: RunningGateway) -> None:
    response = requests.post(gateway.artifact_url("x.txt"), data=b"x", timeout=30)
    assert response.status_code == 405
    assert response.json()["error_code"] == "BAD_REQUEST"
    assert "PUT" in response.headers["Allow"]


def test_the_default_mode_serves_tracking_beside_artifacts(gateway: RunningGateway) -> None:
    response = requests.post(f"{gateway.url}/api/2.0/mlflow/runs/create", json={"experiment_id": "0"}, timeout=30)
    assert response.status_code == 200
    assert response.json()["run"]["info"]["artifact_uri"].startswith("mlflow-artifacts:/0/")


def test_every_response_carries_a_request_id_and_each_request_logs_one_line(
    gateway: RunningGateway, fresh_dir: str
) -> None:
    put(gateway, f"{fresh_dir}/r.txt", b"abc")
    response = requests.get(
        gateway.artifact_url(f"{fresh_dir}/r.txt"), headers={"X-Request-Id": "trace-123"}, timeout=30
    )
    assert response.headers["X-Request-Id"] == "trace-123"
    generated = requests.get(
        gateway.artifact_url(f"{fresh_dir}/nope"), headers={"X-Request-Id": "bad id with spaces"}, timeout=30
    )
    assert len(generated.headers["X-Request-Id"]) == 32
    lines = [line for line in gateway.log_lines() if line.get("request_id") == "trace-123"]
    assert len(lines) == 1
    line = lines[0]
    assert line["msg"] == "request"
    assert (line["method"], line["status"], line["bytes_out"]) == ("GET", 200, 3)
    assert line["path"] == f"{ARTIFACTS}/{fresh_dir}/r.txt"
    assert isinstance(line["duration_ms"], float)


@pytest.mark.parametrize("size", [10, 3 * 1024 * 1024])  # the one-hop path and the streamed one
def test_destination_removed_under_a_running_gateway_is_recreated_by_the_next_upload(tmp_path: Path, size: int) -> None:
    """An operator (or a benchmark) wiping the destination directory: uploads go on, never a 404."""
    with run_gateway(tmp_path / "gw") as gw:
        assert requests.put(gw.artifact_url("a/first.bin"), data=b"x", timeout=30).status_code == 200
        shutil.rmtree(gw.destination)
        data = os.urandom(size)
        response = requests.put(gw.artifact_url("b/second.bin"), data=data, timeout=60)
        assert response.status_code == 200, response.text
        assert (gw.destination / "b" / "second.bin").read_bytes() == data
        assert requests.get(gw.artifact_url("a/first.bin"), timeout=30).status_code == 404
