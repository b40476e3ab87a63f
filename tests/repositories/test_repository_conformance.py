"""One conformance suite for every repository adapter, run against real backends.

Local disk, SeaweedFS (S3) and Azurite (Azure Blob) must all pass the same tests: an adapter is done
when it passes this file.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from repositories import ArtifactPath, ArtifactRepository, ExpectedDigests
from repositories.azure import AzureRepository
from repositories.errors import (
    ChecksumMismatch,
    ConcurrentWrite,
    Conflict,
    InvalidPath,
    NotFound,
    PermissionDenied,
    RepositoryError,
)
from repositories.local import LocalRepository
from repositories.options import AzureOptions, S3Options
from repositories.s3 import S3Repository
from tests.conftest import s3_client
from tests.storage_servers import AzureServer, S3Server

MIB = 1 << 20
PART = 5 * MIB  # S3's minimum part size, so a 12 MiB object takes the multipart path everywhere


def p(text: str) -> ArtifactPath:
    return ArtifactPath.parse(text)


async def body(data: bytes, chunk: int = 256 * 1024) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), chunk):
        yield data[offset : offset + chunk]


async def failing_body(data: bytes) -> AsyncIterator[bytes]:
    async for chunk in body(data):
        yield chunk
    raise ConnectionResetError("client went away mid-upload")


async def read_all(repository: ArtifactRepository, path: str, offset: int = 0, length: int | None = None) -> bytes:
    async with await repository.get(p(path)) as download:
        size = download.info.size if length is None else length
        return b"".join([chunk async for chunk in download.iter_range(offset, size)])


@pytest.fixture(params=["local", "s3", "azure"])
async def repository(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ArtifactRepository]:
    kind = request.param
    repo: ArtifactRepository
    if kind == "local":
        repo = LocalRepository.open(tmp_path / "dest")
    elif kind == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")
        monkeypatch = request.getfixturevalue("monkeypatch")
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        repo = S3Repository(
            bucket,
            "pre/fix",
            S3Options(endpoint_url=server.endpoint, addressing_style="path", part_size=PART, max_parts_in_flight=2),
        )
    else:
        azure: AzureServer = request.getfixturevalue("azure_server")
        container = request.getfixturevalue("azure_container")
        repo = AzureRepository(
            container,
            f"{azure.account}.blob.core.windows.net",
            "pre/fix",
            AzureOptions(connection_string=azure.connection_string, block_size=PART, max_blocks_in_flight=2),
        )
    await repo.start()
    await repo.check()
    yield repo
    await repo.close()


def open_uploads(repository: ArtifactRepository, request: pytest.FixtureRequest) -> list[object]:
    """Multipart uploads still open on the backend (S3 only; others have none to leak)."""
    if not isinstance(repository, S3Repository):
        return []
    client = s3_client(request.getfixturevalue("s3_server"))
    return list(client.list_multipart_uploads(Bucket=repository.bucket).get("Uploads", []))


async def test_small_round_trip_with_digest(repository: ArtifactRepository) -> None:
    data = b"hello, artifact"
    info = await repository.put(p("a/b/hello.txt"), body(data))
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    head = await repository.head(p("a/b/hello.txt"))
    assert (head.size, head.sha256, head.etag) == (len(data), info.sha256, info.etag)
    assert await read_all(repository, "a/b/hello.txt") == data


@pytest.mark.parametrize("content_length", [None, 12 * MIB + 7])
async def test_multipart_round_trip_and_ranges(repository: ArtifactRepository, content_length: int | None) -> None:
    data = os.urandom(12 * MIB + 7)
    info = await repository.put(p("big/model.bin"), body(data, MIB + 3), content_length=content_length)
    assert info.size == len(data)
    head = await repository.head(p("big/model.bin"))
    assert head.size == len(data)
    if isinstance(repository, S3Repository):  # S3 cannot attach a digest at multipart completion: none computed
        assert info.sha256 is None and head.sha256 is None
    elif isinstance(repository, LocalRepository):  # hashed after the answer, recorded beside the bytes
        assert info.sha256 is None
        await repository.digests_settled()
        assert (await repository.head(p("big/model.bin"))).sha256 == hashlib.sha256(data).hexdigest()
    else:
        assert info.sha256 == head.sha256 == hashlib.sha256(data).hexdigest()
    assert await read_all(repository, "big/model.bin") == data
    for offset, length in [(0, 1), (PART - 3, 10), (len(data) - 5, 5), (3 * MIB, 4 * MIB)]:
        assert await read_all(repository, "big/model.bin", offset, length) == data[offset : offset + length]


async def test_empty_object_and_overwrite(repository: ArtifactRepository) -> None:
    await repository.put(p("e.txt"), body(b""))
    assert (await repository.head(p("e.txt"))).size == 0
    assert await read_all(repository, "e.txt") == b""
    first = await repository.put(p("e.txt"), body(b"second"))
    assert await read_all(repository, "e.txt") == b"second"
    second = await repository.put(p("e.txt"), body(b"third!"))
    assert first.etag != second.etag


async def test_missing_and_directory_paths(repository: ArtifactRepository) -> None:
    await repository.put(p("dir/inner.txt"), body(b"x"))
    for missing in ("nope.txt", "dir/nope.txt", "nope/deeper.txt"):
        with pytest.raises(NotFound):
            await repository.get(p(missing))
        with pytest.raises(NotFound):
            await repository.head(p(missing))
    for directory in ("dir",):
        with pytest.raises(Conflict, match="directory"):
            await repository.get(p(directory))
        with pytest.raises(Conflict, match="directory"):
            await repository.head(p(directory))


async def test_listing_one_level_in_key_order_with_paging(repository: ArtifactRepository) -> None:
    names = {"sub/a.txt": b"a", "sub.txt": b"bb", "b.bin": b"ccc", "a/deep/x": b"x", "z": b"", "sub-x": b"1"}
    for name, data in names.items():
        await repository.put(p(f"tree/{name}"), body(data))
    entries = [entry async for entry in repository.list(p("tree"))]
    listed = [(entry.name, entry.is_dir, entry.size) for entry in entries]
    assert listed == [
        ("a", True, None),
        ("b.bin", False, 3),
        ("sub-x", False, 1),
        ("sub.txt", False, 2),
        ("sub", True, None),
        ("z", False, 0),
    ]
    resumed: list[str] = []
    after = None
    while True:
        page = [entry async for entry in repository.list(p("tree"), start_after=after)][:1]
        if not page:
            break
        resumed.append(page[0].name)
        after = page[0].sort_key
    assert resumed == [name for name, _, _ in listed]
    assert [entry async for entry in repository.list(p("tree/missing"))] == []
    assert [entry async for entry in repository.list(p("tree/b.bin"))] == []
    assert [entry.name async for entry in repository.list(ArtifactPath(()))] == ["tree"]


async def test_delete_file_tree_idempotent_and_root_refused(repository: ArtifactRepository) -> None:
    for name in ("d/x.txt", "d/sub/y.txt", "d2/z.txt", "keep.txt"):
        await repository.put(p(name), body(name.encode()))
    await repository.delete(p("d"))
    with pytest.raises(NotFound):
        await repository.head(p("d/sub/y.txt"))
    assert await read_all(repository, "d2/z.txt") == b"d2/z.txt"
    await repository.delete(p("d"))
    await repository.delete(p("keep.txt"))
    with pytest.raises(NotFound):
        await repository.head(p("keep.txt"))
    with pytest.raises(InvalidPath):
        await repository.delete(ArtifactPath(()))
    assert [entry.name async for entry in repository.list(ArtifactPath(()))] == ["d2"]


@pytest.mark.parametrize("size", [100_000, 12 * MIB])
async def test_failed_body_leaves_nothing_visible(
    repository: ArtifactRepository, request: pytest.FixtureRequest, size: int
) -> None:
    await repository.put(p("keep/old.bin"), body(b"previous"))
    with pytest.raises(ConnectionResetError):
        await repository.put(p("keep/old.bin"), failing_body(os.urandom(size)))
    with pytest.raises(ConnectionResetError):
        await repository.put(p("fresh/new.bin"), failing_body(os.urandom(size)))
    assert await read_all(repository, "keep/old.bin") == b"previous"
    with pytest.raises(NotFound):
        await repository.head(p("fresh/new.bin"))
    assert [entry.name async for entry in repository.list(ArtifactPath(()))] == ["keep"]
    assert open_uploads(repository, request) == []


async def test_sha256_of_a_multipart_upload_when_the_client_asks(repository: ArtifactRepository) -> None:
    data = os.urandom(12 * MIB + 1)
    info = await repository.put(p("asked.bin"), body(data), expected=ExpectedDigests(sha256_wanted=True))
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    verified = await repository.put(p("md5.bin"), body(data), expected=ExpectedDigests(md5=hashlib.md5(data).digest()))
    assert verified.sha256 == info.sha256


@pytest.mark.parametrize("size", [1000, 12 * MIB])
async def test_checksum_mismatch_stores_nothing(
    repository: ArtifactRepository, request: pytest.FixtureRequest, size: int
) -> None:
    data = os.urandom(size)
    wrong = ExpectedDigests(sha256=hashlib.sha256(data + b"!").digest())
    with pytest.raises(ChecksumMismatch):
        await repository.put(p("c/x.bin"), body(data), expected=wrong)
    with pytest.raises(NotFound):
        await repository.head(p("c/x.bin"))
    assert open_uploads(repository, request) == []
    right = ExpectedDigests(md5=hashlib.md5(data).digest(), sha256=hashlib.sha256(data).digest())
    await repository.put(p("c/x.bin"), body(data), expected=right)
    assert await read_all(repository, "c/x.bin") == data


@pytest.mark.parametrize(
    "name",
    [
        "with space.txt",
        "ünïcödé.txt",
        "a+b=c&d.txt",
        "emoji-🙂.bin",
        "100%.txt",
        "semi;colon",
        "model..v2.bin",
        "UPPER.TXT",
        "tab\tnot.txt".replace("\t", "_"),
    ],
)
async def test_odd_names_round_trip_and_list(repository: ArtifactRepository, name: str) -> None:
    await repository.put(p(f"odd/{name}"), body(name.encode()))
    assert await read_all(repository, f"odd/{name}") == name.encode()
    assert [entry.name async for entry in repository.list(p("odd"))] == [name]


async def test_bad_credentials_are_permission_denied(
    repository: ArtifactRepository, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if isinstance(repository, LocalRepository):
        blocked = Path(repository.root) / "blocked"
        blocked.write_bytes(b"")
        with pytest.raises(PermissionDenied):
            LocalRepository.open(blocked / "dest")
        return
    bad: ArtifactRepository
    if isinstance(repository, S3Repository):
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
        bad = S3Repository(repository.bucket, "x", repository.options)
    else:
        assert isinstance(repository, AzureRepository)
        server: AzureServer = request.getfixturevalue("azure_server")
        wrong = server.connection_string.replace(server.key, "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmc=")
        bad = AzureRepository(
            repository.container_name, repository.account_host, "x", AzureOptions(connection_string=wrong)
        )
    await bad.start()
    try:
        with pytest.raises(PermissionDenied):
            await bad.check()
        with pytest.raises(PermissionDenied):
            await bad.put(p("x.txt"), body(b"x"))
    finally:
        await bad.close()


async def test_missing_bucket_or_container_fails_the_check(
    repository: ArtifactRepository, request: pytest.FixtureRequest
) -> None:
    missing: ArtifactRepository
    if isinstance(repository, LocalRepository):
        return  # a local destination is created on open
    if isinstance(repository, S3Repository):
        missing = S3Repository("no-such-bucket-here", "", repository.options)
    else:
        assert isinstance(repository, AzureRepository)
        missing = AzureRepository("no-such-container", repository.account_host, "", repository.options)
    await missing.start()
    try:
        with pytest.raises(RepositoryError):
            await missing.check()
    finally:
        await missing.close()


# -- multipart uploads through the API (parts may arrive out of order, from any worker) -------------


@pytest.mark.parametrize("num_parts", [None, 3], ids=["count-unknown", "count-announced"])
async def test_multipart_upload_assembles_parts_in_number_order(
    repository: ArtifactRepository, request: pytest.FixtureRequest, num_parts: int | None
) -> None:
    from repositories.base import UploadedPart

    chunks = [os.urandom(PART), os.urandom(PART), os.urandom(1234)]
    upload_id = await repository.create_multipart(p("mpu/model.bin"), num_parts=num_parts)
    etags = {}
    for number in (3, 1, 2):  # any order
        etags[number] = await repository.put_part(
            p("mpu/model.bin"), upload_id, number, body(chunks[number - 1]), content_length=len(chunks[number - 1])
        )
    etags[2] = await repository.put_part(p("mpu/model.bin"), upload_id, 2, body(chunks[1]), content_length=PART)
    with pytest.raises(NotFound):  # nothing visible before completion
        await repository.head(p("mpu/model.bin"))
    info = await repository.complete_multipart(
        p("mpu/model.bin"), upload_id, [UploadedPart(n, etags[n]) for n in (2, 3, 1)]
    )
    assert info.size == sum(len(chunk) for chunk in chunks)
    assert await read_all(repository, "mpu/model.bin") == b"".join(chunks)
    assert open_uploads(repository, request) == []


async def test_multipart_missing_part_or_unknown_upload(
    repository: ArtifactRepository, request: pytest.FixtureRequest
) -> None:
    from repositories.base import UploadedPart

    upload_id = await repository.create_multipart(p("mpu/x.bin"))
    first = await repository.put_part(p("mpu/x.bin"), upload_id, 1, body(os.urandom(PART)), content_length=PART)
    with pytest.raises(Conflict):
        await repository.complete_multipart(p("mpu/x.bin"), upload_id, [UploadedPart(1, first), UploadedPart(2, first)])
    with pytest.raises(Conflict):
        await repository.complete_multipart(p("mpu/x.bin"), upload_id, [UploadedPart(1, "0" * 64)])
    await repository.abort_multipart(p("mpu/x.bin"), upload_id)
    await repository.abort_multipart(p("mpu/x.bin"), upload_id)  # idempotent
    with pytest.raises(NotFound):
        await repository.head(p("mpu/x.bin"))
    assert open_uploads(repository, request) == []
    if not isinstance(repository, AzureRepository):  # Azure keeps no upload state to forget
        with pytest.raises((NotFound, Conflict)):
            await repository.complete_multipart(p("mpu/x.bin"), upload_id, [UploadedPart(1, first)])
    with pytest.raises((NotFound, Conflict)):
        await repository.put_part(p("mpu/x.bin"), "not-an-upload", 1, body(b"x"), content_length=1)


async def test_multipart_size_is_the_sum_of_the_listed_parts(
    repository: ArtifactRepository, request: pytest.FixtureRequest
) -> None:
    """What completing would store, read without completing: the gateway's cap on a multipart upload."""
    from repositories.base import UploadedPart

    sizes = {1: PART, 2: PART, 3: 1234}
    upload_id = await repository.create_multipart(p("mpu/sized.bin"))
    etags = {}
    for number, size in sizes.items():
        etags[number] = await repository.put_part(
            p("mpu/sized.bin"), upload_id, number, body(os.urandom(size)), content_length=size
        )
    etags[3] = await repository.put_part(p("mpu/sized.bin"), upload_id, 3, body(os.urandom(99)), content_length=99)
    listed = [UploadedPart(n, etags[n]) for n in (3, 1, 2)]
    assert await repository.multipart_size(p("mpu/sized.bin"), upload_id, listed) == 2 * PART + 99
    assert await repository.multipart_size(p("mpu/sized.bin"), upload_id, listed[:2]) == PART + 99
    with pytest.raises(Conflict):  # a part never sent
        await repository.multipart_size(p("mpu/sized.bin"), upload_id, [*listed, UploadedPart(4, etags[1])])
    with pytest.raises(Conflict):  # an ETag that is not this part's
        await repository.multipart_size(p("mpu/sized.bin"), upload_id, [UploadedPart(1, etags[2])])
    with pytest.raises(NotFound):  # nothing was completed
        await repository.head(p("mpu/sized.bin"))
    await repository.abort_multipart(p("mpu/sized.bin"), upload_id)
    assert open_uploads(repository, request) == []


async def test_sweep_removes_abandoned_multipart_uploads(
    repository: ArtifactRepository, request: pytest.FixtureRequest
) -> None:
    from repositories.base import UploadedPart

    upload_id = await repository.create_multipart(p("old/abandoned.bin"))
    etag = await repository.put_part(p("old/abandoned.bin"), upload_id, 1, body(b"x" * 10), content_length=10)
    assert await repository.sweep_abandoned(3600) == 0  # fresh uploads are kept
    if isinstance(repository, AzureRepository):
        return  # Azure discards uncommitted blocks by itself; there is nothing for the gateway to sweep
    await asyncio.sleep(1.1)
    assert await repository.sweep_abandoned(1) >= 1
    assert open_uploads(repository, request) == []
    with pytest.raises((NotFound, Conflict)):
        await repository.complete_multipart(p("old/abandoned.bin"), upload_id, [UploadedPart(1, etag)])


# -- S3 only: the per-part checksum the adapter sends is the one the server verifies --------------


@pytest.mark.parametrize(
    ("checksums", "header"), [("when_supported", "x-amz-checksum-crc32"), ("when_required", "Content-MD5")]
)
@pytest.mark.parametrize("size", [1000, 12 * MIB])
async def test_s3_parts_carry_a_checksum_the_server_verifies(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, checksums: str, header: str, size: int
) -> None:
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    options = S3Options(
        endpoint_url=server.endpoint,
        addressing_style="path",
        checksums=checksums,
        part_size=PART,  # type: ignore[arg-type]
    )
    repository = S3Repository(bucket, "sums", options)
    await repository.start()
    sent: list[str] = []
    corrupt = False

    def inspect(request: object, **_: object) -> None:
        headers = request.headers  # type: ignore[attr-defined]
        if header in headers:
            sent.append(headers[header])
            if corrupt:  # before signing: the signature stays valid, only the checksum lies
                headers[header] = "AAAAAA==" if header.startswith("x-amz") else "1B2M2Y8AsgTpgAmY7PhCfg=="

    payload_hashes: list[str] = []

    def signed(request: object, **_: object) -> None:
        if request.method == "PUT":  # type: ignore[attr-defined]
            payload_hashes.append(request.headers["X-Amz-Content-SHA256"])  # type: ignore[attr-defined]

    repository.client.meta.events.register("before-sign.s3", inspect)
    repository.client.meta.events.register("before-send.s3", signed)
    try:
        data = os.urandom(size)
        info = await repository.put(p("ok.bin"), body(data))
        assert info.sha256 == (hashlib.sha256(data).hexdigest() if size < PART else None)
        assert await read_all(repository, "ok.bin") == data
        assert len(sent) == (1 if size < PART else 3)
        assert set(payload_hashes) == {b"UNSIGNED-PAYLOAD"}  # the body is not hashed again on the loop

        corrupt = True
        with pytest.raises(RepositoryError):
            await repository.put(p("bad.bin"), body(data))
        with pytest.raises(NotFound):
            await repository.head(p("bad.bin"))
        assert open_uploads(repository, request) == []
    finally:
        await repository.close()


# -- what every backend refuses or leaves out alike (security review, finding 10) -------------------


def write_around(repository: ArtifactRepository, request: pytest.FixtureRequest, name: str, data: bytes) -> None:
    """Store `name` (under the repository's root) behind the adapter's back, as another program would."""
    if isinstance(repository, LocalRepository):
        target = Path(repository.root) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    elif isinstance(repository, S3Repository):
        key = f"{repository.prefix}/{name}"
        s3_client(request.getfixturevalue("s3_server")).put_object(Bucket=repository.bucket, Key=key, Body=data)
    else:
        from azure.storage.blob import BlobServiceClient

        assert isinstance(repository, AzureRepository)
        server: AzureServer = request.getfixturevalue("azure_server")
        service = BlobServiceClient.from_connection_string(server.connection_string)
        service.get_blob_client(repository.container_name, f"{repository.prefix}/{name}").upload_blob(data)


async def test_a_file_and_a_folder_cannot_share_a_name(repository: ArtifactRepository) -> None:
    """Local disk cannot hold both; S3 and Azure could, and then listed the name twice. All refuse alike."""
    await repository.put(p("fd/x/y.txt"), body(b"inside"))
    with pytest.raises(Conflict, match="'fd/x' collides with an existing file or directory"):
        await repository.put(p("fd/x"), body(b"a file where a folder is"))
    with pytest.raises(Conflict, match="'fd/x' collides"):
        await repository.put(p("fd/x"), body(os.urandom(PART + 1)))  # the multipart path too
    await repository.put(p("fd/file.txt"), body(b"a file"))
    for below in ("fd/file.txt/under.txt", "fd/file.txt/deeper/under.txt"):
        with pytest.raises(Conflict, match="A file is in the way of"):
            await repository.put(p(below), body(b"under a file"))
    listed = [(entry.name, entry.is_dir) async for entry in repository.list(p("fd"))]
    assert listed == [("file.txt", False), ("x", True)]
    assert await read_all(repository, "fd/x/y.txt") == b"inside"
    with pytest.raises(NotFound):
        await repository.head(p("fd/file.txt/under.txt"))
    if not isinstance(repository, LocalRepository):  # local multipart completion is another engineer's change
        upload_id = await repository.create_multipart(p("fd/x"))
        etag = await repository.put_part(p("fd/x"), upload_id, 1, body(b"part"), content_length=4)
        from repositories.base import UploadedPart

        with pytest.raises(Conflict, match="collides"):
            await repository.complete_multipart(p("fd/x"), upload_id, [UploadedPart(1, etag)])
        await repository.abort_multipart(p("fd/x"), upload_id)


async def test_a_file_where_an_emptied_folder_was_is_in_the_way_below_it(repository: ArtifactRepository) -> None:
    """The object stores remember for a few seconds which folders they just wrote into (no HEAD of
    them); deleting forgets that, so a file written where the folder was is seen again."""
    await repository.put(p("fe/x/y.txt"), body(b"inside"))
    await repository.put(p("fe/x/w.txt"), body(b"inside too"))
    await repository.delete(p("fe/x"))
    await repository.put(p("fe/x"), body(b"now a file"))
    with pytest.raises(Conflict, match="A file is in the way of"):
        await repository.put(p("fe/x/z.txt"), body(b"below a file"))
    with pytest.raises(Conflict, match="A file is in the way of"):
        await repository.put(p("fe/x/z.txt"), body(os.urandom(PART + 1)))
    assert [(entry.name, entry.is_dir) async for entry in repository.list(p("fe"))] == [("x", False)]
    assert await read_all(repository, "fe/x") == b"now a file"


async def test_s3_uploads_into_folders_just_written_send_no_head_for_them(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An MLflow run's artifact sits three or more folders deep, and each small upload sent a HEAD per
    folder besides its listing and its PutObject (which waited for a 100 Continue): most of the
    requests a small upload cost S3."""
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    repository = S3Repository(bucket, "runs", S3Options(endpoint_url=server.endpoint, addressing_style="path"))
    await repository.start()
    calls: list[str] = []
    expect: list[str | None] = []

    def record(model: object, **_: object) -> None:
        calls.append(model.name)  # type: ignore[attr-defined]

    def sent(request: object, **_: object) -> None:
        if request.method == "PUT":  # type: ignore[attr-defined]
            expect.append(request.headers.get("Expect"))  # type: ignore[attr-defined]

    repository.client.meta.events.register("before-call.s3", record)
    repository.client.meta.events.register("before-send.s3", sent)
    try:
        await repository.put(p("0/run/artifacts/first.txt"), body(b"1"))
        assert sorted(calls) == ["HeadObject"] * 3 + ["ListObjectsV2", "PutObject"]
        assert expect == [None]  # a small body goes at once, without waiting for a 100 Continue
        calls.clear()
        await repository.put(p("0/run/artifacts/second.txt"), body(b"2"))
        assert sorted(calls) == ["ListObjectsV2", "PutObject"]
        calls.clear()
        await repository.put(p("0/run/artifacts/model/third.txt"), body(b"3"))
        assert sorted(calls) == ["HeadObject", "ListObjectsV2", "PutObject"]  # only the new folder
        calls.clear()
        await repository.delete(p("0/run/artifacts/second.txt"))
        calls.clear()
        await repository.put(p("0/run/artifacts/fourth.txt"), body(b"4"))  # after a delete, checked again
        assert sorted(calls) == ["HeadObject"] * 3 + ["ListObjectsV2", "PutObject"]
        assert await read_all(repository, "0/run/artifacts/model/third.txt") == b"3"
    finally:
        await repository.close()


async def test_names_no_client_could_use_are_left_out_of_listings(
    repository: ArtifactRepository, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    """Written around the gateway, `%2e%2e%2fevil.txt`, `a#b?c.txt` or a tab passed through listings, and
    then the stock client could not download the folder at all."""
    for name in ("%2e%2e%2fevil.txt", "a#b?c.txt", "tab\tname.txt", "fine.txt"):
        write_around(repository, request, f"odd-names/{name}", b"x")
    write_around(repository, request, "odd-names/%2e%2e/deep.txt", b"x")
    with caplog.at_level(logging.WARNING, logger="repositories"):
        assert [entry.name async for entry in repository.list(p("odd-names"))] == ["fine.txt"]
    (record,) = [r for r in caplog.records if r.getMessage() == "listing leaves out names no client could use"]
    assert record.fields["left_out"] == 4 and record.fields["folder"] == "odd-names"  # type: ignore[attr-defined]


async def test_concurrent_writes_of_one_object_leave_it_whole(repository: ArtifactRepository) -> None:
    """Two uploads of one large object at once: the second stages its blocks while the first commits. On
    Azure the first commit dropped the second's blocks and the second failed with a 400 (Conflict).
    Now each either succeeds or asks to be sent again (ConcurrentWrite), and the object is one of them, whole."""
    first, second = os.urandom(2 * PART + 11), os.urandom(2 * PART + 22)
    first_done = asyncio.Event()

    async def held_back(data: bytes) -> AsyncIterator[bytes]:
        yield data[:PART]
        yield data[PART : 2 * PART]  # two parts staged (sent once the third part starts to fill)
        await first_done.wait()
        yield data[2 * PART :]

    async def first_upload() -> None:
        try:
            await repository.put(p("race/model.bin"), body(first))
        finally:
            first_done.set()

    results = await asyncio.gather(
        repository.put(p("race/model.bin"), held_back(second)), first_upload(), return_exceptions=True
    )
    assert all(r is None or not isinstance(r, BaseException) or isinstance(r, ConcurrentWrite) for r in results), (
        results
    )
    stored = await read_all(repository, "race/model.bin")
    assert stored in (first, second)
    if isinstance(results[0], ConcurrentWrite):
        assert stored == first
        await repository.put(p("race/model.bin"), body(second))  # sent again, it goes through
        assert await read_all(repository, "race/model.bin") == second
