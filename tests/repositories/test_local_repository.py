"""The local-disk adapter used directly: atomicity, cleanup, digests, listing order."""

from __future__ import annotations

import asyncio
import collections
import errno
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from repositories import ArtifactPath, ExpectedDigests, deferred_digests
from repositories.errors import ChecksumMismatch, Conflict, InvalidPath, NotFound, PermissionDenied, StorageFull
from repositories.local import LocalRepository
from repositories.local.staging import STAGING_DIR_NAME
from repositories.local.streaming import WRITE_BATCH_BYTES
from repositories.writeback import WRITEBACK_WINDOW_BYTES, start_writeback
from tests.conftest import tree_snapshot
from tests.descriptors import open_fds

WANTED = ExpectedDigests(sha256_wanted=True)


def p(text: str) -> ArtifactPath:
    return ArtifactPath.parse(text)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def failing_after(data: bytes) -> AsyncIterator[bytes]:
    yield data
    raise ConnectionResetError("client went away")


@pytest.fixture
def repo(tmp_path: Path) -> LocalRepository:
    return LocalRepository.open(tmp_path / "dest")


def debris(repo: LocalRepository) -> list[str]:
    return os.listdir(repo.root / STAGING_DIR_NAME)


async def test_put_get_round_trip_with_digest(repo: LocalRepository) -> None:
    data = os.urandom(3 * 1024 * 1024 + 11)
    info = await repo.put(p("a/b/c.bin"), chunks(data[:100], data[100:]), expected=WANTED)
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    async with await repo.get(p("a/b/c.bin")) as download:
        assert download.info.sha256 == info.sha256
        assert b"".join([chunk async for chunk in download.iter_range(0, len(data))]) == data
        assert b"".join([chunk async for chunk in download.iter_range(5, 10)]) == data[5:15]
    assert (await repo.head(p("a/b/c.bin"))).etag == info.etag


async def test_a_streamed_upload_nobody_asked_a_digest_of_is_hashed_after_its_answer(repo: LocalRepository) -> None:
    data = os.urandom(3 * 1024 * 1024 + 11)
    info = await repo.put(p("later.bin"), chunks(data[:100], data[100:]))
    assert (info.size, info.sha256) == (len(data), None)
    await repo.digests_settled()
    head = await repo.head(p("later.bin"))
    assert head.sha256 == hashlib.sha256(data).hexdigest()
    assert head.etag == info.etag  # recording the digest does not change the validator
    async with await repo.get(p("later.bin")) as download:
        assert download.info.sha256 == head.sha256
    assert debris(repo) == []


@pytest.mark.parametrize("declared", [True, False])
async def test_small_bodies_are_hashed_at_once_whatever_the_client_asked(repo: LocalRepository, declared: bool) -> None:
    data = os.urandom(WRITE_BATCH_BYTES)  # the largest small body, sent with or without its length
    info = await repo.put(p("small.bin"), chunks(data[:7], data[7:]), content_length=len(data) if declared else None)
    assert info.sha256 == hashlib.sha256(data).hexdigest()


async def test_an_overwrite_before_the_deferred_hash_keeps_the_new_bytes_digest(repo: LocalRepository) -> None:
    first, second, third = (os.urandom(2 * 1024 * 1024 + n) for n in range(3))
    await repo.put(p("model.bin"), chunks(first))
    await repo.put(p("model.bin"), chunks(second))  # both still waiting to be hashed
    await repo.digests_settled()
    assert (await repo.head(p("model.bin"))).sha256 == hashlib.sha256(second).hexdigest()
    await repo.put(p("model.bin"), chunks(first))
    stored = await repo.put(p("model.bin"), chunks(third), expected=WANTED)
    await repo.digests_settled()  # the first file's digest goes to its own (unlinked) inode
    assert (await repo.head(p("model.bin"))).sha256 == stored.sha256 == hashlib.sha256(third).hexdigest()
    await repo.put(p("gone.bin"), chunks(first))
    await repo.delete(p("gone.bin"))
    await repo.digests_settled()
    assert not (repo.root / "gone.bin").exists()
    assert debris(repo) == []


async def test_with_too_many_files_waiting_a_large_upload_is_hashed_before_its_answer(
    repo: LocalRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deferred_digests, "MAX_WAITING", 0)  # as if 64 files already waited
    data = os.urandom(3 * 1024 * 1024 + 5)
    open_before = open_fds()
    info = await repo.put(p("busy.bin"), chunks(data[:100], data[100:]))
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert (await repo.head(p("busy.bin"))).sha256 == info.sha256  # recorded, with nothing left to settle
    assert open_fds() == open_before
    assert debris(repo) == []


async def test_closing_drops_the_waiting_hashes_and_their_descriptors_and_says_which(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    repo = LocalRepository.open(tmp_path / "dest")
    open_before = open_fds()
    for index in range(5):
        await repo.put(p(f"f{index}.bin"), chunks(os.urandom(2 * 1024 * 1024)))
    with caplog.at_level(logging.WARNING, logger="artifact_gateway"):
        await repo.close()
    assert open_fds() == open_before
    hashed = [(await repo.head(p(f"f{index}.bin"))).sha256 for index in range(5)]
    assert hashed[-1] is None  # the last ones were dropped, not hashed on the way out
    [warning] = caplog.records
    assert warning.fields["paths"] == [f"f{i}.bin" for i, sha256 in enumerate(hashed) if sha256 is None]  # type: ignore[attr-defined]
    late = await repo.put(p("after-close.bin"), chunks(os.urandom(2 * 1024 * 1024)))
    assert late.sha256 is None and open_fds() == open_before


async def test_failing_body_leaves_no_object_no_staging_and_no_directories(repo: LocalRepository) -> None:
    with pytest.raises(ConnectionResetError):
        await repo.put(p("new/dir/x.bin"), failing_after(os.urandom(2 * 1024 * 1024)))
    assert not (repo.root / "new").exists()
    assert debris(repo) == []


async def test_checksum_mismatch_stores_nothing_and_keeps_old_version(repo: LocalRepository) -> None:
    await repo.put(p("x.bin"), chunks(b"old"))
    wrong = ExpectedDigests(sha256=hashlib.sha256(b"other").digest())
    with pytest.raises(ChecksumMismatch):
        await repo.put(p("x.bin"), chunks(b"new"), expected=wrong)
    assert (repo.root / "x.bin").read_bytes() == b"old"
    right = ExpectedDigests(md5=hashlib.md5(b"new").digest(), sha256=hashlib.sha256(b"new").digest())
    await repo.put(p("x.bin"), chunks(b"new"), expected=right)
    assert (repo.root / "x.bin").read_bytes() == b"new"
    assert debris(repo) == []


async def test_conflicts_are_reported_and_roll_back_created_directories(repo: LocalRepository) -> None:
    await repo.put(p("file"), chunks(b"x"))
    with pytest.raises(Conflict):
        await repo.put(p("file/sub/y"), chunks(b"y"))
    await repo.put(p("dir/inner"), chunks(b"x"))
    with pytest.raises(Conflict):
        await repo.put(p("dir"), chunks(b"y"))
    with pytest.raises(Conflict):
        await repo.get(p("dir"))
    assert sorted(os.listdir(repo.root)) == sorted([STAGING_DIR_NAME, "file", "dir"])
    assert debris(repo) == []


async def test_missing_paths(repo: LocalRepository) -> None:
    for path in ("nope", "nope/deeper"):
        with pytest.raises(NotFound):
            await repo.get(p(path))
        with pytest.raises(NotFound):
            await repo.head(p(path))
        assert [entry async for entry in repo.list(p(path))] == []
        await repo.delete(p(path))  # idempotent


async def test_reserved_and_root_paths_are_refused(repo: LocalRepository) -> None:
    with pytest.raises(InvalidPath):
        await repo.put(p(f"{STAGING_DIR_NAME}/x.part"), chunks(b"x"))
    with pytest.raises(InvalidPath):
        await repo.delete(ArtifactPath(()))
    with pytest.raises(InvalidPath):
        await repo.put(ArtifactPath(()), chunks(b"x"))


async def test_listing_is_sorted_and_resumes_after_a_name(repo: LocalRepository) -> None:
    for name in ("b", "a", "c/d", "e"):
        await repo.put(p(f"dir/{name}"), chunks(name.encode()))
    names = [(entry.name, entry.is_dir, entry.size) async for entry in repo.list(p("dir"))]
    assert names == [("a", False, 1), ("b", False, 1), ("c", True, None), ("e", False, 1)]
    assert [entry.name async for entry in repo.list(p("dir"), start_after="b")] == ["c", "e"]
    root = [entry.name async for entry in repo.list(ArtifactPath(()))]
    assert root == ["dir"]


async def test_sweep_removes_only_stale_staging_files(repo: LocalRepository) -> None:
    stale = repo.root / STAGING_DIR_NAME / "old.part"
    fresh = repo.root / STAGING_DIR_NAME / "new.part"
    stale.write_bytes(b"left by a crash")
    fresh.write_bytes(b"in progress")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    assert await repo.sweep_abandoned(3600) == 1
    assert not stale.exists()
    assert fresh.exists()


async def test_fsync_off_still_writes_atomically(tmp_path: Path) -> None:
    repo = LocalRepository.open(tmp_path / "nofsync", fsync=False)
    await repo.put(p("x"), chunks(b"data"))
    assert (repo.root / "x").read_bytes() == b"data"


def record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool, int]]:
    """Every fsync in this process, as (inode, is a directory, link count) when it starts; the real call still runs."""
    import stat

    real_fsync = os.fsync
    flushed: list[tuple[int, bool, int]] = []

    def recording(fd: int) -> None:
        st = os.fstat(fd)
        flushed.append((st.st_ino, stat.S_ISDIR(st.st_mode), st.st_nlink))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return flushed


@pytest.mark.parametrize("small", [True, False], ids=["small-body", "streamed-body"])
async def test_a_new_folder_chain_is_made_durable_with_its_file(
    repo: LocalRepository, monkeypatch: pytest.MonkeyPatch, small: bool
) -> None:
    """Every directory that gained an entry is flushed (the root, each new folder's parent, the file's
    folder), each once, and the file before it has a name; an existing folder costs one flush."""
    data = os.urandom(1000 if small else WRITE_BATCH_BYTES + 1)
    length = len(data) if small else None
    flushed = record_fsyncs(monkeypatch)
    await repo.put(p("run/artifacts/deep/model.bin"), chunks(data), content_length=length)
    inode = {name: os.stat(repo.root / name).st_ino for name in ("", "run", "run/artifacts", "run/artifacts/deep")}
    stored = os.stat(repo.root / "run/artifacts/deep/model.bin")
    unnamed = 0 if repo._anonymous else 1  # a named staging file has its staging name only
    assert flushed[0] == (stored.st_ino, False, unnamed)  # the bytes, before the file was linked into place
    directories = [ino for ino, is_dir, _ in flushed[1:]]
    assert all(is_dir for _, is_dir, _ in flushed[1:])
    assert sorted(directories) == sorted(inode.values())  # each directory that gained an entry, once

    flushed.clear()
    await repo.put(p("run/artifacts/deep/next.bin"), chunks(data), content_length=length)
    assert [(is_dir, ino) for ino, is_dir, _ in flushed[1:]] == [(True, inode["run/artifacts/deep"])]
    assert (repo.root / "run/artifacts/deep/next.bin").read_bytes() == data
    assert (repo.root / "run/artifacts/deep/model.bin").read_bytes() == data
    assert debris(repo) == []


def test_flushing_directories_together_reports_a_failure_after_all(tmp_path: Path) -> None:
    from repositories.local.flushes import fsync_together

    folders = [os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY) for _ in range(3)]
    closed = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    os.close(closed)
    try:
        fsync_together(folders)
        with pytest.raises(OSError) as failure:
            fsync_together([folders[0], closed, folders[1], folders[2]])
        assert failure.value.errno == errno.EBADF
    finally:
        for fd in folders:
            os.close(fd)


def test_open_refuses_an_unwritable_destination(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(PermissionDenied):
        LocalRepository.open(blocker / "dest")


async def test_disk_full_is_reported_and_leaves_nothing(tmp_path: Path) -> None:
    """A write that hits ENOSPC (a full disk) maps to StorageFull and removes its staging file."""
    full = Path("/dev/full")  # every write to it fails with ENOSPC
    repo = LocalRepository.open(tmp_path / "dest")
    staging = repo.root / STAGING_DIR_NAME
    # Point the staging file's descriptor at /dev/full once it is open.
    original = repo._open_staging

    def open_on_full_device(expected: ExpectedDigests | None, **options: bool):  # type: ignore[no-untyped-def]
        staged = original(expected, **options)
        os.dup2(os.open(full, os.O_WRONLY), staged.fd)
        return staged

    repo._open_staging = open_on_full_device  # type: ignore[method-assign]
    with pytest.raises(StorageFull):
        await repo.put(p("big/file.bin"), chunks(os.urandom(2 * 1024 * 1024)))
    assert os.listdir(staging) == []
    assert not (repo.root / "big").exists()


MIB = 1 << 20


def record_writeback(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every early-writeback window the adapter starts, as (offset, length); the real call still runs."""
    import repositories.local.streaming as streaming_module

    started: list[tuple[int, int]] = []

    def recording(fd: int, offset: int, length: int) -> None:
        started.append((offset, length))
        start_writeback(fd, offset, length)

    monkeypatch.setattr(streaming_module, "start_writeback", recording)
    return started


async def test_durable_uploads_head_for_the_disk_window_by_window(
    repo: LocalRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = record_writeback(monkeypatch)
    data = os.urandom(20 * MIB + 5)
    blocks = [data[i : i + MIB] for i in range(0, len(data), MIB)]
    info = await repo.put(p("big/model.bin"), chunks(*blocks), expected=WANTED)
    assert started == [(0, WRITEBACK_WINDOW_BYTES), (WRITEBACK_WINDOW_BYTES, WRITEBACK_WINDOW_BYTES)]
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert (repo.root / "big/model.bin").read_bytes() == data


async def test_parts_and_no_fsync_uploads_start_no_early_writeback(
    repo: LocalRepository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from repositories.base import UploadedPart

    started = record_writeback(monkeypatch)
    data = os.urandom(18 * MIB)
    blocks = [data[i : i + MIB] for i in range(0, len(data), MIB)]
    upload_id = await repo.create_multipart(p("mpu/model.bin"))
    etag = await repo.put_part(p("mpu/model.bin"), upload_id, 1, chunks(*blocks), content_length=len(data))
    assert started == []  # a part is not the object: it is flushed, if ever, as the assembled file
    await repo.complete_multipart(p("mpu/model.bin"), upload_id, [UploadedPart(1, etag)])
    assert started == [(0, WRITEBACK_WINDOW_BYTES), (WRITEBACK_WINDOW_BYTES, WRITEBACK_WINDOW_BYTES)]
    assert (repo.root / "mpu/model.bin").read_bytes() == data

    started.clear()
    fast = LocalRepository.open(tmp_path / "nofsync", fsync=False)
    await fast.put(p("x.bin"), chunks(*blocks))
    assert started == []
    assert (fast.root / "x.bin").read_bytes() == data


def test_early_writeback_is_only_a_hint(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    try:
        start_writeback(write_end, 0, MIB)  # a pipe cannot be written back: refused quietly
    finally:
        os.close(read_end)
        os.close(write_end)
    path = tmp_path / "f"
    path.write_bytes(b"x" * MIB)
    fd = os.open(path, os.O_WRONLY)
    try:
        start_writeback(fd, 0, MIB)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"x" * MIB


async def test_many_uploads_at_once_all_store_every_byte(repo: LocalRepository) -> None:
    uploads = 6
    inside = asyncio.Barrier(uploads)
    datas = [os.urandom(5 * MIB + n) for n in range(uploads)]

    async def body(data: bytes) -> AsyncIterator[bytes]:
        yield data[:MIB]
        await inside.wait()  # every upload is streaming at once before any finishes
        for offset in range(MIB, len(data), 300_000):
            yield data[offset : offset + 300_000]

    wanted = [n % 2 == 0 for n in range(uploads)]  # hashed while streaming, or after the answer
    puts = (repo.put(p(f"many/{n}.bin"), body(d), expected=WANTED if wanted[n] else None) for n, d in enumerate(datas))
    infos = await asyncio.gather(*puts)
    await repo.digests_settled()
    for n, (data, info) in enumerate(zip(datas, infos, strict=True)):
        assert info.sha256 == (hashlib.sha256(data).hexdigest() if wanted[n] else None)
        assert (await repo.head(p(f"many/{n}.bin"))).sha256 == hashlib.sha256(data).hexdigest()
        assert (repo.root / f"many/{n}.bin").read_bytes() == data
    assert debris(repo) == []


# -- symbolic links: never followed, not even for a moment ---------------------------------------

OUTSIDE_SECRET = b"outside the destination: must never be read"
FLIPPER = """
import os, sys, time
link, inside, outside, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
spare = link + ".next"
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    for target in (inside, outside):
        try:
            os.symlink(target, spare)
            os.replace(spare, link)
        except FileExistsError:
            os.unlink(spare)
"""


async def test_a_link_flipped_between_inside_and_outside_never_leads_outside(tmp_path: Path) -> None:
    """The reviewer's race: a process flips `flip` between a directory inside the destination and one
    outside while GET, HEAD, list, PUT and DELETE go through it. Checking a path with realpath and
    then using it let GET read, PUT create and DELETE remove files outside; each operation now
    opens its way one level at a time without following a link, so every one of them is refused."""
    import subprocess
    import sys

    repo = LocalRepository.open(tmp_path / "dest", fsync=False)
    inside = repo.root / "inside"
    outside = tmp_path / "outside"
    for directory, secret in ((inside, b"inside"), (outside, OUTSIDE_SECRET)):
        (directory / "sub").mkdir(parents=True)
        (directory / "secret.txt").write_bytes(secret)
        (directory / "sub" / "secret.txt").write_bytes(secret)
    for n in range(200):
        (outside / f"victim-{n}.txt").write_bytes(b"keep")
    before = tree_snapshot(outside)
    link = repo.root / "flip"
    link.symlink_to(inside)
    seconds = 4.0
    flipper = subprocess.Popen([sys.executable, "-c", FLIPPER, str(link), str(inside), str(outside), str(seconds)])
    refused = (InvalidPath, NotFound, Conflict)
    escapes: collections.Counter[str] = collections.Counter()
    operations = 0

    async def attempt(n: int) -> None:
        nonlocal operations
        operations += 1
        kind = n % 6
        try:
            if kind == 0:
                async with await repo.get(p(f"flip/{'sub/' if n % 12 else ''}secret.txt")) as download:
                    data = b"".join([chunk async for chunk in download.iter_range(0, download.info.size)])
                    escapes["GET read outside"] += data == OUTSIDE_SECRET
            elif kind == 1:
                info = await repo.head(p("flip/secret.txt"))
                escapes["HEAD described outside"] += info.size == len(OUTSIDE_SECRET)
            elif kind == 2:
                names = [entry.name async for entry in repo.list(p("flip"))]
                escapes["list showed outside"] += any(name.startswith("victim") for name in names)
            elif kind == 3:
                await repo.put(p(f"flip/planted-{n}.txt"), chunks(b"planted"))
            elif kind == 4:
                await repo.put(p(f"flip/sub/new-{n}/planted.txt"), chunks(b"planted"))
            else:
                await repo.delete(p(f"flip/victim-{n % 200}.txt"))
                await repo.delete(p("flip/sub"))
        except refused:
            pass

    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds - 0.5
        n = 0
        while loop.time() < deadline:
            await asyncio.gather(*(attempt(n + i) for i in range(24)))
            n += 24
    finally:
        flipper.wait(timeout=30)
    after = tree_snapshot(outside)
    escapes["PUT created outside"] = len(set(after) - set(before))
    escapes["DELETE removed outside"] = len(set(before) - set(after))
    assert operations > 1000
    assert +escapes == collections.Counter(), f"{operations} operations escaped: {dict(+escapes)}"
    assert after == before  # nothing created, changed or removed outside
    assert link.is_symlink()  # and the link itself was never deleted or replaced by the gateway


async def test_links_inside_the_destination_are_not_followed_listed_or_served(repo: LocalRepository) -> None:
    """Links put in the destination by another process: left out of listings (a link's size used to be
    its target's), refused as a path, and a DELETE of the link removes only the link."""
    await repo.put(p("real/data.txt"), chunks(b"0123456789"))
    (repo.root / "real" / "file-link").symlink_to(repo.root / "real" / "data.txt")
    (repo.root / "dir-link").symlink_to(repo.root / "real")
    (repo.root / "dangling").symlink_to(repo.root / "nowhere")
    os.mkfifo(repo.root / "real" / "fifo")
    assert [(e.name, e.is_dir, e.size) async for e in repo.list(ArtifactPath(()))] == [("real", True, None)]
    assert [(e.name, e.size) async for e in repo.list(p("real"))] == [("data.txt", 10)]
    for path in ("real/file-link", "dir-link/data.txt"):
        with pytest.raises(InvalidPath, match="symbolic link"):
            await repo.get(p(path))
        with pytest.raises(InvalidPath, match="symbolic link"):
            await repo.head(p(path))
    with pytest.raises(InvalidPath, match="symbolic link"):
        [entry async for entry in repo.list(p("dir-link"))]
    with pytest.raises(InvalidPath, match="symbolic link"):
        await repo.put(p("dir-link/new.txt"), chunks(b"x"))
    with pytest.raises(NotFound):
        await repo.get(p("real/fifo"))
    await repo.delete(p("dir-link"))
    await repo.delete(p("real/file-link"))
    assert not (repo.root / "dir-link").is_symlink() and not (repo.root / "real" / "file-link").is_symlink()
    assert (repo.root / "real" / "data.txt").read_bytes() == b"0123456789"


async def test_a_recursive_delete_unlinks_links_and_never_enters_them(repo: LocalRepository, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "keep.txt").write_bytes(b"keep")
    await repo.put(p("tree/a/b/c.txt"), chunks(b"x"))
    (repo.root / "tree" / "a" / "out").symlink_to(outside)
    (repo.root / "tree" / "a" / "b" / "deep-out").symlink_to(outside / "deep")
    await repo.delete(p("tree"))
    assert not (repo.root / "tree").exists()
    assert (outside / "deep" / "keep.txt").read_bytes() == b"keep"
