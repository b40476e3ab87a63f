"""The local destination's disk fills up: a clear 507 with MLflow's RESOURCE_EXHAUSTED, nothing
visible, nothing left staged, the space given back, and an existing object never damaged.

The destination is a real 8 MiB file system (tmpfs, else a loop-mounted ext4 image) mounted for
this module; the tests run as root, as CI does, and fail (never skip) when it cannot be mounted.
The gateway's log and database stay on the ordinary disk.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from tests.gateway_process import ARTIFACTS, RunningGateway, run_gateway

KIB = 1 << 10
MIB = 1 << 20
DISK_MIB = 8
MPU = "/api/2.0/mlflow-artifacts/mpu"
SLACK = 64 * KIB
"""What file-system metadata may keep of the space after a failed upload (directory blocks on ext4)."""


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)


def _why(exc: Exception) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        return f"{' '.join(exc.cmd)}: exit {exc.returncode}: {exc.stderr.strip()}"
    return str(exc)


@contextlib.contextmanager
def small_file_system(mountpoint: Path, size_mib: int) -> Iterator[str]:
    """A `size_mib` file system mounted at `mountpoint` for the block; yields its kind."""
    mountpoint.mkdir(parents=True)
    image = mountpoint.with_name(f"{mountpoint.name}.ext4")
    try:
        _run("mount", "-t", "tmpfs", "-o", f"size={size_mib}m,mode=0755", "tmpfs", str(mountpoint))
        kind = "tmpfs"
    except (OSError, subprocess.SubprocessError) as tmpfs_error:
        try:
            _run("truncate", "-s", f"{size_mib}M", str(image))
            _run("mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", str(image))  # all of it for files
            _run("mount", "-o", "loop", str(image), str(mountpoint))
            kind = "ext4"
        except (OSError, subprocess.SubprocessError) as loop_error:
            pytest.fail(
                "cannot mount a small file system for the disk-full tests (they need root or CAP_SYS_ADMIN): "
                f"tmpfs: {_why(tmpfs_error)}; loop ext4: {_why(loop_error)}"
            )
    try:
        yield kind
    finally:
        _run("umount", str(mountpoint))
        image.unlink(missing_ok=True)


@dataclass
class FullDisk:
    gateway: RunningGateway
    mount: Path

    @property
    def staging(self) -> Path:
        return self.gateway.destination / ".artifact-gateway-staging"

    def free(self) -> int:
        st = os.statvfs(self.mount)
        return st.f_bavail * st.f_frsize

    def debris(self) -> list[str]:
        """Staging files and multipart uploads still held."""
        found = [entry.name for entry in self.staging.iterdir() if entry.name != "mpu"]
        if (self.staging / "mpu").exists():
            found += [f"mpu/{entry.name}" for entry in (self.staging / "mpu").iterdir()]
        return found

    def request_lines(self, method: str, path_end: str) -> list[dict[str, object]]:
        return [
            line
            for line in self.gateway.log_lines()
            if line.get("msg") == "request" and line["method"] == method and str(line["path"]).endswith(path_end)
        ]


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullDisk]:
    root = tmp_path_factory.mktemp("diskfull")
    with small_file_system(root / "mnt", DISK_MIB):
        destination = root / "mnt" / "artifacts"
        with run_gateway(root / "gateway", "--signing-key", "disk-full-tests", destination=destination) as gateway:
            yield FullDisk(gateway, root / "mnt")


@pytest.fixture
def baseline(disk: FullDisk, fresh_dir: str) -> Iterator[int]:
    """The free space before the test; afterwards the disk is emptied for the next one.

    What the test stored goes through the API; debris a failing test left is removed by hand,
    so that one failure does not cascade (each test asserts its own absence of debris).
    """
    yield disk.free()
    requests.delete(disk.gateway.artifact_url(fresh_dir), timeout=30).raise_for_status()
    for entry in disk.staging.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def assert_refused_as_full(response: requests.Response) -> None:
    assert response.status_code == 507, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error_code"] == "RESOURCE_EXHAUSTED"
    assert "artifact destination is full" in body["message"]
    assert "Traceback" not in response.text


def assert_nothing_left(disk: FullDisk, fresh_dir: str, name: str, baseline: int) -> None:
    """No object, no listing entry, no staging debris, and the space given back."""
    gateway = disk.gateway
    assert requests.get(gateway.artifact_url(f"{fresh_dir}/{name}"), timeout=30).status_code == 404
    listing = requests.get(f"{gateway.url}{ARTIFACTS}", params={"path": fresh_dir}, timeout=30)
    assert name not in {entry["path"] for entry in listing.json().get("files", [])}
    assert disk.debris() == []
    assert disk.free() >= baseline - SLACK


def assert_small_upload_works(disk: FullDisk, fresh_dir: str) -> None:
    small = requests.put(disk.gateway.artifact_url(f"{fresh_dir}/after.txt"), data=b"room again", timeout=30)
    assert small.status_code == 200, small.text
    assert requests.get(disk.gateway.artifact_url(f"{fresh_dir}/after.txt"), timeout=30).content == b"room again"


def chunks_of(data: bytes, size: int = 64 * KIB) -> Iterator[bytes]:
    """A body without Content-Length: requests sends it chunked."""
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_upload_larger_than_the_free_space_is_507_and_leaves_nothing(
    disk: FullDisk, fresh_dir: str, baseline: int, chunked: bool
) -> None:
    data = os.urandom(12 * MIB)
    body = chunks_of(data) if chunked else data
    response = requests.put(disk.gateway.artifact_url(f"{fresh_dir}/big.bin"), data=body, timeout=60)
    assert_refused_as_full(response)
    assert_nothing_left(disk, fresh_dir, "big.bin", baseline)
    (line,) = disk.request_lines("PUT", f"{fresh_dir}/big.bin")
    assert line["status"] == 507
    assert "artifact destination is full" in str(line["error"])
    if not chunked:  # the declared length was refused before a byte of the body was stored
        assert "needs 12.0 MiB" in response.json()["message"]
        assert line["bytes_in"] == 0
    assert_small_upload_works(disk, fresh_dir)


def test_the_disk_filling_up_mid_upload_is_507_and_leaves_nothing(
    disk: FullDisk, fresh_dir: str, baseline: int
) -> None:
    """The declared length fits when the upload starts; another writer takes the space meanwhile."""
    data = os.urandom(6 * MIB)
    filler = disk.mount / "other-writer.bin"
    connection = http.client.HTTPConnection("127.0.0.1", disk.gateway.port, timeout=60)
    try:
        connection.putrequest("PUT", f"{ARTIFACTS}/{fresh_dir}/late.bin")
        connection.putheader("Content-Length", str(len(data)))
        connection.endheaders()
        connection.send(data[: 3 * MIB // 2])
        deadline = time.monotonic() + 20
        # Staging files are anonymous (O_TMPFILE) where the file system allows: watch the space.
        while baseline - disk.free() < MIB:
            assert time.monotonic() < deadline, "the upload never reached its staging file"
            time.sleep(0.05)
        with open(filler, "wb") as out:
            os.posix_fallocate(out.fileno(), 0, disk.free() - 256 * KIB)
        connection.send(data[3 * MIB // 2 :])  # the gateway drains what it no longer stores
        response = connection.getresponse()
        status, body = response.status, response.read()
    finally:
        connection.close()
        filler.unlink(missing_ok=True)
    assert status == 507
    assert b"RESOURCE_EXHAUSTED" in body and b"artifact destination is full" in body
    assert_nothing_left(disk, fresh_dir, "late.bin", baseline)
    assert_small_upload_works(disk, fresh_dir)


def create_upload(disk: FullDisk, directory: str, name: str, parts: int) -> dict[str, object]:
    response = requests.post(
        f"{disk.gateway.url}{MPU}/create/{directory}", json={"path": f"/home/me/{name}", "num_parts": parts}, timeout=30
    )
    assert response.status_code == 200, response.text
    created: dict[str, object] = response.json()
    return created


def abort_upload(disk: FullDisk, directory: str, name: str, upload_id: object) -> None:
    response = requests.post(
        f"{disk.gateway.url}{MPU}/abort/{directory}",
        json={"path": f"/home/me/{name}", "upload_id": upload_id},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def test_multipart_parts_that_fill_the_disk_are_507_then_abort_leaves_nothing(
    disk: FullDisk, fresh_dir: str, baseline: int
) -> None:
    created = create_upload(disk, fresh_dir, "parts.bin", 3)
    credentials = created["credentials"]
    assert isinstance(credentials, list)
    statuses = []
    for credential in credentials:  # 3 x 3 MiB on 8 MiB: the third part has no room
        response = requests.put(credential["url"], data=os.urandom(3 * MIB), timeout=60)
        statuses.append(response.status_code)
    assert statuses == [200, 200, 507]
    assert_refused_as_full(response)
    assert "part 3 of" in response.json()["message"]
    assert requests.get(disk.gateway.artifact_url(f"{fresh_dir}/parts.bin"), timeout=30).status_code == 404
    assert len(disk.debris()) == 1  # the upload, with the parts that fit, until the client aborts it
    abort_upload(disk, fresh_dir, "parts.bin", created["upload_id"])
    assert_nothing_left(disk, fresh_dir, "parts.bin", baseline)
    assert_small_upload_works(disk, fresh_dir)


def _send_parts(credentials: object, sizes: list[int]) -> list[dict[str, object]]:
    assert isinstance(credentials, list)
    parts = []
    for credential, size in zip(credentials, sizes, strict=True):
        response = requests.put(credential["url"], data=os.urandom(size), timeout=60)
        assert response.status_code == 200, response.text
        parts.append({"part_number": credential["part_number"], "etag": response.headers["ETag"]})
    return parts


def test_multipart_completion_in_place_needs_no_room_beside_the_parts(
    disk: FullDisk, fresh_dir: str, baseline: int
) -> None:
    """Parts of 2 x 3 MiB, each written at its final offset: completing copies nothing, so it fits."""
    created = create_upload(disk, fresh_dir, "whole.bin", 2)
    parts = _send_parts(created["credentials"], [3 * MIB, 3 * MIB])
    done = requests.post(
        f"{disk.gateway.url}{MPU}/complete/{fresh_dir}",
        json={"path": "/home/me/whole.bin", "upload_id": created["upload_id"], "parts": parts},
        timeout=60,
    )
    assert done.status_code == 200, done.text
    head = requests.head(disk.gateway.artifact_url(f"{fresh_dir}/whole.bin"), timeout=30)
    assert head.headers["Content-Length"] == str(6 * MIB)
    assert disk.debris() == []
    assert requests.delete(disk.gateway.artifact_url(f"{fresh_dir}/whole.bin"), timeout=30).status_code == 200


def test_multipart_completion_by_copy_without_room_is_507_then_abort_leaves_nothing(
    disk: FullDisk, fresh_dir: str, baseline: int
) -> None:
    """A last part larger than the first does not fit the layout: assembling needs a copy beside the parts."""
    created = create_upload(disk, fresh_dir, "whole.bin", 2)
    parts = _send_parts(created["credentials"], [2 * MIB, 3 * MIB])
    done = requests.post(
        f"{disk.gateway.url}{MPU}/complete/{fresh_dir}",
        json={"path": "/home/me/whole.bin", "upload_id": created["upload_id"], "parts": parts},
        timeout=60,
    )
    assert_refused_as_full(done)
    assert "assembling" in done.json()["message"]
    assert requests.get(disk.gateway.artifact_url(f"{fresh_dir}/whole.bin"), timeout=30).status_code == 404
    assert [name for name in disk.debris() if not name.startswith("mpu/")] == []  # no half-assembled copy
    abort_upload(disk, fresh_dir, "whole.bin", created["upload_id"])
    assert_nothing_left(disk, fresh_dir, "whole.bin", baseline)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_failed_overwrite_leaves_the_existing_object_intact(
    disk: FullDisk, fresh_dir: str, baseline: int, chunked: bool
) -> None:
    url = disk.gateway.artifact_url(f"{fresh_dir}/model.bin")
    old = os.urandom(3 * MIB)
    stored = requests.put(url, data=old, timeout=60)
    assert stored.status_code == 200
    with_old = disk.free()
    new = os.urandom(7 * MIB)  # fits the empty disk, not beside the old version
    response = requests.put(url, data=chunks_of(new) if chunked else new, timeout=60)
    assert_refused_as_full(response)
    served = requests.get(url, timeout=30)
    assert served.status_code == 200
    assert served.content == old
    assert served.headers["ETag"] == stored.headers["ETag"]
    assert disk.debris() == []
    assert disk.free() >= with_old - SLACK


def test_the_stock_mlflow_client_fails_at_once_with_the_reason(
    disk: FullDisk, fresh_dir: str, baseline: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """507 is not among the statuses MLflow's client retries (408, 429, 500, 502-504): no minutes of backoff."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", disk.gateway.url)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * MIB))
    repo = get_artifact_repository(f"mlflow-artifacts://127.0.0.1:{disk.gateway.port}/{fresh_dir}")
    for multipart in (False, True):
        # With a 1 MiB threshold the client sends 5 MiB parts.
        monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(MIB if multipart else 1 << 40))
        # server-info offers no multipart on local disk (one PUT is faster): the client is made to use it.
        monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true" if multipart else "false")
        monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MIB))
        started = time.monotonic()
        # A single PUT fails with requests' HTTPError, a multipart upload with MlflowException.
        with pytest.raises((requests.HTTPError, MlflowException), match="artifact destination is full"):
            repo.log_artifact(str(big))
        assert time.monotonic() - started < 30
        assert_nothing_left(disk, fresh_dir, "big.bin", baseline)  # the client aborted its multipart upload
    assert len(disk.request_lines("POST", f"mpu/abort/{fresh_dir}")) == 1
