"""Folder archives (`GET .../archive/<folder>?format=zip|tar.gz`) on every backend, and the writers alone.

Each backend gets a nested folder (an empty file, unicode, spaces and a 200-byte name, a file of
several read chunks, deep nesting) beside siblings with a common name prefix that must stay out;
the archives are unpacked and compared file by file by SHA-256 with what was uploaded. Refusals
before the first byte are exact 4xx messages; a storage failure after it leaves an archive that
no reader accepts. The writers' ZIP64 and PAX paths are checked on sizes past 4 and 8 GiB without
storing them: the archive is kept sparse in memory, its runs of zeros described, not held.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import json
import os
import tarfile
import uuid
import zipfile
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from gateway.artifacts.archive import ROOT_NAME, TarGzWriter, ZipWriter
from tests.cloud_backend import Backend
from tests.gateway_process import RunningGateway, run_gateway

MIB = 1 << 20
API = "/api/2.0/mlflow-artifacts"
FORMATS = ("zip", "tar.gz")
LONG_NAME = "l" * 196 + ".bin"  # past tar's 100-byte name field: needs a PAX path record
TREE = {
    "MLmodel": b"artifact_path: model\nflavors: {}\n",
    "empty.txt": b"",
    "name with spaces & ü.txt": b"odd names survive",
    "日本語/重み.bin": os.urandom(1000),
    "weights.bin": os.urandom(9 * MIB + 17),  # several read chunks on every backend (Azure reads 4 MiB)
    "a/b/c/d/e/f/g/h/leaf.txt": b"deep",
    LONG_NAME: b"long",
}
SIBLINGS = {"model2/other.bin": b"not mine", "model.txt": b"not mine either", "modelx/y": b"nor this"}


class Target:
    """A gateway on one backend, and a way to delete an object behind its back."""

    def __init__(self, kind: str, gateway: RunningGateway, backend: Backend | None) -> None:
        self.kind = kind
        self.gateway = gateway
        self.backend = backend
        self.folder = f"tree-{uuid.uuid4().hex[:8]}/1/abc/artifacts"

    def put(self, path: str, data: bytes) -> None:
        requests.put(self.gateway.artifact_url(path), data=data, timeout=120).raise_for_status()

    def delete_behind(self, path: str) -> None:
        if self.backend is None:
            (self.gateway.destination / path).unlink()
        else:
            self.backend.delete(path)

    def get(self, path: str, archive_format: str | None = None, **kwargs: object) -> requests.Response:
        params = {"format": archive_format} if archive_format else {}
        return requests.get(f"{self.gateway.url}{API}/archive/{path}", params=params, timeout=120, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=["local", "s3", "azure"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    workdir = tmp_path_factory.mktemp(f"archive-{request.param}")
    backend = None if request.param == "local" else Backend(request.param, request)
    env, destination = (backend.env, backend.uri) if backend else ({}, None)
    with run_gateway(workdir, "--artifacts-only", env=env, destination=destination) as gateway:
        built = Target(request.param, gateway, backend)
        for name, data in {**{f"model/{k}": v for k, v in TREE.items()}, **SIBLINGS}.items():
            built.put(f"{built.folder}/{name}", data)
        yield built


def digests(files: dict[str, bytes], top: str) -> dict[str, str]:
    return {f"{top}/{name}": hashlib.sha256(data).hexdigest() for name, data in files.items()}


def unpack(body: bytes, archive_format: str) -> tuple[dict[str, str], set[str]]:
    """SHA-256 of each file in the archive by name, and the directory names."""
    files, dirs = {}, set()
    if archive_format == "zip":
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            assert archive.testzip() is None  # every CRC checks out
            for info in archive.infolist():
                if info.is_dir():
                    dirs.add(info.filename.rstrip("/"))
                else:
                    files[info.filename] = hashlib.sha256(archive.read(info)).hexdigest()
        return files, dirs
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        for member in archive:
            if member.isdir():
                dirs.add(member.name)
            else:
                extracted = archive.extractfile(member)
                assert extracted is not None and member.isfile()
                files[member.name] = hashlib.sha256(extracted.read()).hexdigest()
    return files, dirs


@pytest.mark.parametrize("archive_format", FORMATS)
@pytest.mark.parametrize("trailing", ["", "/"])
def test_a_folder_comes_back_file_for_file(target: Target, archive_format: str, trailing: str) -> None:
    response = target.get(f"{target.folder}/model{trailing}", archive_format)
    assert response.status_code == 200, response.text
    extension = archive_format
    assert response.headers["Content-Type"] == {"zip": "application/zip", "tar.gz": "application/gzip"}[extension]
    assert response.headers["Content-Disposition"] == f"attachment; filename=model.{extension}"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in response.headers
    files, dirs = unpack(response.content, archive_format)
    assert files == digests(TREE, "model")  # the siblings model2/, model.txt, modelx/ stay out
    assert {"model", "model/a/b/c/d/e/f/g/h", "model/日本語"} <= dirs
    audit = [line for line in target.gateway.log_lines() if line.get("action") == "archive"][-1]
    assert audit["path"] == f"{target.folder}/model" and audit["files"] == len(TREE) and audit["complete"] is True
    request_line = [line for line in target.gateway.log_lines() if line.get("msg") == "request"][-1]
    assert request_line["bytes_out"] == len(response.content)


def test_zip_is_the_default_and_the_ajax_prefix_serves_it_too(target: Target) -> None:
    response = requests.get(f"{target.gateway.url}/ajax-api/2.0/mlflow-artifacts/archive/{target.folder}", timeout=60)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "attachment; filename=artifacts.zip"
    files, _ = unpack(response.content, "zip")
    expected = digests({**{f"model/{k}": v for k, v in TREE.items()}, **SIBLINGS}, "artifacts")
    assert files == expected


@pytest.mark.parametrize("route", ["/archive", "/archive/"])
def test_the_root_is_archived_under_a_top_directory_of_its_own(target: Target, route: str) -> None:
    response = requests.get(f"{target.gateway.url}{API}{route}", params={"format": "tar.gz"}, timeout=120)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Disposition"] == f"attachment; filename={ROOT_NAME}.tar.gz"
    files, _ = unpack(response.content, "tar.gz")
    ours = {name: digest for name, digest in files.items() if name.startswith(f"{ROOT_NAME}/{target.folder}/")}
    expected = {**{f"model/{k}": v for k, v in TREE.items()}, **SIBLINGS}
    assert ours == digests(expected, f"{ROOT_NAME}/{target.folder}")
    assert all(name.startswith(f"{ROOT_NAME}/") for name in files)


def test_refusals_before_the_first_byte_are_exact(target: Target) -> None:
    def error(path: str, archive_format: str | None = None) -> tuple[int, str, str]:
        status, headers, body = target.gateway.raw_request(
            "GET", f"{API}/archive/{path}" + (f"?format={archive_format}" if archive_format else "")
        )
        assert headers["Content-Type"].startswith("application/json")
        parsed = json.loads(body)
        return status, parsed["error_code"], parsed["message"]

    folder = target.folder
    assert error(f"{folder}/model", "rar") == (
        400,
        "INVALID_PARAMETER_VALUE",
        "Unknown archive format 'rar': use format=zip or format=tar.gz",
    )
    assert error(f"{folder}/model", "ZIP")[0] == 400
    assert error(f"{folder}/../x") == (400, "INVALID_PARAMETER_VALUE", "Invalid path: '..' segment")
    assert error(f"{folder}/nothing-here") == (
        404,
        "RESOURCE_DOES_NOT_EXIST",
        f"Nothing to archive at '{folder}/nothing-here': no such folder, or it is empty",
    )
    assert error(f"{folder}/model/MLmodel") == (
        400,
        "INVALID_PARAMETER_VALUE",
        f"'{folder}/model/MLmodel' is a file, not a folder: download it directly with "
        f"GET {API}/artifacts/{folder}/model/MLmodel",
    )


def test_an_empty_folder_and_an_empty_root_are_404(tmp_path: Path) -> None:
    with run_gateway(tmp_path, "--artifacts-only") as gateway:
        status, _, body = gateway.raw_request("GET", f"{API}/archive")
        assert (status, json.loads(body)["message"]) == (404, "Nothing to archive: the artifact root is empty")
        (gateway.destination / "hollow").mkdir(parents=True)
        status, _, body = gateway.raw_request("GET", f"{API}/archive/hollow?format=tar.gz")
        assert (status, json.loads(body)["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("archive_format", FORMATS)
def test_a_storage_failure_mid_archive_never_looks_like_a_whole_archive(target: Target, archive_format: str) -> None:
    """`big.bin` streams while `z.txt`, listed but not yet opened, is deleted behind the gateway's
    back: its read fails after the status line, and the client must be left with a broken archive."""
    folder = f"{target.folder}/failing-{archive_format}"
    target.put(f"{folder}/big.bin", os.urandom(32 * MIB))
    target.put(f"{folder}/z.txt", b"read after big.bin")
    body = b""
    with target.get(folder, archive_format, stream=True) as response:
        assert response.status_code == 200
        chunks = response.iter_content(MIB)
        body += next(chunks)  # the gateway is now held by back-pressure inside big.bin
        target.delete_behind(f"{folder}/z.txt")
        with pytest.raises(requests.exceptions.ChunkedEncodingError):  # no last chunk: the body was cut
            for chunk in chunks:
                body += chunk
    assert len(body) > MIB  # most of big.bin; what the gateway still held when z.txt failed never left
    if archive_format == "zip":
        with pytest.raises(zipfile.BadZipFile):
            zipfile.ZipFile(io.BytesIO(body))
    else:
        gzip = zlib.decompressobj(31)
        gzip.decompress(body)
        assert not gzip.eof, "the gzip member must lack its end"
        with pytest.raises((tarfile.ReadError, EOFError)), tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
            tar.getmembers()
    request_line = target.gateway.wait_for_log(msg="request", method="GET", path=f"{API}/archive/{folder}")[0]
    assert request_line["outcome"] == "storage_failed_mid_body" and "z.txt" in str(request_line["error"])
    assert target.gateway.wait_for_log(action="archive", path=folder)[0]["complete"] is False
    assert "Traceback" not in target.gateway.log_path.read_text()
    assert requests.get(f"{target.gateway.url}/health", timeout=10).status_code == 200


def test_unsafe_stored_names_are_left_out(tmp_path: Path) -> None:
    """A name written around the gateway that no client could extract safely is skipped, with a warning."""
    with run_gateway(tmp_path, "--artifacts-only") as gateway:
        folder = gateway.destination / "odd"
        folder.mkdir(parents=True)
        (folder / "fine.txt").write_bytes(b"fine")
        (folder / "back\\slash.txt").write_bytes(b"unsafe on Windows")
        response = requests.get(f"{gateway.url}{API}/archive/odd", timeout=30)
        assert response.status_code == 200
        assert set(unpack(response.content, "zip")[0]) == {"odd/fine.txt"}
        # The listings the archive walks leave such names out, with a warning (every listing does).
        assert any(line.get("msg") == "listing leaves out names no client could use" for line in gateway.log_lines())


def test_a_folder_of_links_to_links_is_archived_without_following_them(tmp_path: Path) -> None:
    """The reviewer's archive bomb: a few links to the folder itself, nested, made an archive of millions
    of entries. Links are never followed (left out), and the folder's entries are capped anyway."""
    with run_gateway(tmp_path, "--artifacts-only") as gateway:
        bomb = gateway.destination / "bomb"
        bomb.mkdir(parents=True)
        (bomb / "real.txt").write_bytes(b"the only file")
        for n in range(8):
            (bomb / f"loop{n}").symlink_to(".")
            (bomb / f"up{n}").symlink_to(bomb)
        body = b""
        with requests.get(f"{gateway.url}{API}/archive/bomb", stream=True, timeout=30) as response:
            for chunk in response.iter_content(1 << 16):
                body += chunk
                assert len(body) < MIB, "the archive kept growing: links were followed"
        assert response.status_code == 200
        assert set(unpack(body, "zip")[0]) == {"bomb/real.txt"}


def test_a_folder_past_the_entry_cap_is_refused_before_the_first_byte(tmp_path: Path) -> None:
    with run_gateway(tmp_path, "--artifacts-only", "--max-archive-entries", "20") as gateway:
        for n in range(15):
            requests.put(gateway.artifact_url(f"wide/sub/f{n}.txt"), data=b"x", timeout=30).raise_for_status()
        for n in range(4):
            requests.put(gateway.artifact_url(f"wide/g{n}.txt"), data=b"x", timeout=30).raise_for_status()
        assert requests.get(f"{gateway.url}{API}/archive/wide", timeout=30).status_code == 200  # 20 entries
        requests.put(gateway.artifact_url("wide/sub/one-more.txt"), data=b"x", timeout=30).raise_for_status()
        status, _, body = gateway.raw_request("GET", f"{API}/archive/wide?format=tar.gz")
        assert status == 400
        assert json.loads(body)["message"] == (
            "'wide' holds more than 20 files and folders, the most one archive may hold (--max-archive-entries): "
            "archive a subfolder, or download the files one by one"
        )
        assert requests.get(f"{gateway.url}{API}/archive/wide/sub", timeout=30).status_code == 200
        status, _, body = gateway.raw_request("GET", f"{API}/archive")
        assert status == 400 and "The artifact root holds more than 20" in json.loads(body)["message"]


# -- the writers alone, past the 4 GiB (zip) and 8 GiB (tar) limits ---------------------------------


class SparseArchive(io.RawIOBase):
    """An archive held as its non-zero pieces at their offsets, zeros between: seekable and readable."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.pieces: list[bytes] = []
        self.size = 0
        self.position = 0

    def append(self, data: bytes, *, zeros: int = 0) -> None:
        if data:
            self.starts.append(self.size)
            self.pieces.append(data)
        self.size += len(data) + zeros

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = {0: offset, 1: self.position + offset, 2: self.size + offset}[whence]
        return self.position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        length = min(len(buffer), self.size - self.position)
        view = memoryview(buffer).cast("B")[:length]
        view[:] = bytes(length)
        index = bisect.bisect_right(self.starts, self.position + length) - 1
        while index >= 0 and self.starts[index] + len(self.pieces[index]) > self.position:
            start, piece = self.starts[index], self.pieces[index]
            low, high = max(start, self.position), min(start + len(piece), self.position + length)
            if low < high:
                view[low - self.position : high - self.position] = piece[low - start : high - start]
            index -= 1
        self.position += length
        return length


def test_zip64_for_a_file_past_4_gib_an_offset_past_it_and_more_than_65535_entries() -> None:
    size = (4 << 30) + 3 * MIB + 5
    chunk = bytes(8 * MIB)
    writer, sparse = ZipWriter(), SparseArchive()
    moment = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
    sparse.append(writer.directory("big", moment))
    sparse.append(writer.start_file("big/zeros.bin", size, moment))
    crc, left = 0, size
    while left:
        piece = chunk[: min(left, len(chunk))]
        out = writer.data(piece)
        assert out == piece  # STORED: the data goes out as it came in
        sparse.append(b"", zeros=len(out))
        crc, left = zlib.crc32(piece, crc), left - len(piece)
    sparse.append(writer.end_file())
    sparse.append(writer.start_file("big/after.txt", 5, moment) + writer.data(b"after") + writer.end_file())
    for number in range(70_000):
        sparse.append(writer.start_file(f"big/many/{number}", 0, moment) + writer.end_file())
    sparse.append(writer.finish())

    with zipfile.ZipFile(sparse) as archive:
        infos = archive.infolist()
        assert len(infos) == 70_003
        big = archive.getinfo("big/zeros.bin")
        assert (big.file_size, big.compress_size, big.CRC, big.compress_type) == (size, size, crc, zipfile.ZIP_STORED)
        assert big.date_time == (2026, 11, 27, 12, 0, 0)
        after = archive.getinfo("big/after.txt")
        assert after.header_offset > size  # a ZIP64 offset in the central directory
        assert archive.read(after) == b"after"
        with archive.open(big) as member:  # read to the end: zipfile checks the CRC there
            read = 0
            while block := member.read(16 * MIB):
                read += len(block)
        assert read == size


def test_pax_headers_carry_sizes_past_8_gib_and_long_unicode_names() -> None:
    huge = (9 << 30) + 1
    name = "top/" + "ü" * 120 + "/weights.bin"
    writer = TarGzWriter()
    moment = datetime(2026, 11, 27, tzinfo=UTC)
    stream = writer.directory("top", moment) + writer.start_file(name, huge, moment)
    stream += writer._gzip.flush(zlib.Z_SYNC_FLUSH)  # the headers alone, readable without the data
    with tarfile.open(fileobj=io.BytesIO(stream), mode="r|gz") as archive:
        top = archive.next()
        member = archive.next()
    assert top is not None and top.isdir() and top.name == "top"
    assert member is not None and (member.name, member.size) == (name, huge)
    assert member.mtime == int(moment.timestamp())
    assert member.pax_headers["size"] == str(huge)


def test_a_tar_file_shorter_than_announced_is_an_error() -> None:
    writer = TarGzWriter()
    writer.start_file("x", 10, datetime.now(UTC))
    writer.data(b"short")
    with pytest.raises(ValueError, match="5 bytes away"):
        writer.end_file()


def test_small_tar_gz_round_trip_is_byte_exact(tmp_path: Path) -> None:
    writer = TarGzWriter()
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    out = writer.directory("d", moment)
    for name, data in TREE.items():
        out += writer.start_file(f"d/{name}", len(data), moment)
        for offset in range(0, len(data), MIB):
            out += writer.data(data[offset : offset + MIB])
        out += writer.end_file()
    out += writer.finish()
    assert len(zlib.decompress(out, 31)) % tarfile.RECORDSIZE == 0
    assert unpack(out, "tar.gz")[0] == digests(TREE, "d")


async def test_closing_an_archive_midway_closes_the_open_download_at_once(tmp_path: Path) -> None:
    """A client gone mid-archive: closing the outer generator closes the file being read two levels down,
    and the listing of the folder it is in."""
    import contextlib

    from gateway.artifacts.archive import FORMATS, FolderArchive
    from repositories import ArtifactPath
    from tests.listings import CountingListings

    repository = CountingListings.open(tmp_path / "dest")
    data = os.urandom(3 << 20)
    await repository.put(ArtifactPath.parse("top/inner/big.bin"), _one(data))
    opened: list[object] = []
    real_get = repository.get

    async def recording_get(path: ArtifactPath) -> object:
        download = await real_get(path)
        opened.append(download)
        return download

    repository.get = recording_get  # type: ignore[method-assign,assignment]
    folder = ArtifactPath.parse("top")
    listing = repository.list(folder)
    first = await anext(listing)
    archive = FolderArchive(repository, folder, FORMATS["zip"], first, listing)
    async with contextlib.aclosing(archive.chunks()) as chunks:
        await anext(chunks)  # the first flush: the file is open and partly read
        assert len(opened) == 1
    assert opened[0].file.closed  # type: ignore[attr-defined]
    assert repository.unfinished == 1  # only the top listing, which its caller closes
    await listing.aclose()
    assert repository.unfinished == 0


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data
