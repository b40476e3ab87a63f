"""Local multipart uploads: parts written at their final offsets, completed without copying them.

Not timed: these prove what makes completion fast (the object is the very file the parts were
written into, and no part's bytes are read back or copied) and that every promise of the copying
assembly still holds: any order, uneven sizes, retries, wrong ETags, abort, sweep, a part that
arrives after the upload is complete.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import repositories.local.multipart as multipart_module
from repositories import ArtifactPath
from repositories.base import UploadedPart
from repositories.errors import Conflict, NotFound
from repositories.local import LocalRepository
from repositories.local.multipart import DATA_NAME, upload_dir
from repositories.local.staging import STAGING_DIR_NAME
from repositories.writeback import WRITEBACK_WINDOW_BYTES, start_writeback

MIB = 1 << 20
PART = 5 * MIB
OBJECT = ArtifactPath.parse("models/model.bin")


async def body(data: bytes, piece: int = 300_000) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), piece):
        yield data[offset : offset + piece]


@pytest.fixture
def repo(tmp_path: Path) -> LocalRepository:
    return LocalRepository.open(tmp_path / "dest")


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The bytes of each part the completion copies (into its range, or into a new file)."""
    copied: list[int] = []
    copy_into, copy_pieces = multipart_module._copy_into, multipart_module.copy_pieces

    def counting_copy_into(source: Path, fd: int, offset: int, size: int) -> None:
        copied.append(size)
        copy_into(source, fd, offset, size)

    def counting_copy_pieces(staged: object, pieces: list[multipart_module.Piece]) -> None:
        copied.extend(piece.size for piece in pieces)
        copy_pieces(staged, pieces)  # type: ignore[arg-type]

    monkeypatch.setattr(multipart_module, "_copy_into", counting_copy_into)
    monkeypatch.setattr("repositories.local.repository.copy_pieces", counting_copy_pieces)
    return copied


async def send(repo: LocalRepository, upload_id: str, number: int, data: bytes) -> str:
    return await repo.put_part(OBJECT, upload_id, number, body(data), content_length=len(data))


def staging_debris(repo: LocalRepository) -> list[str]:
    staging = repo.root / STAGING_DIR_NAME
    return sorted(str(path.relative_to(staging)) for path in staging.rglob("*"))


async def test_parts_in_any_order_become_the_object_without_a_copy(repo: LocalRepository, copies: list[int]) -> None:
    chunks = [os.urandom(PART), os.urandom(PART), os.urandom(PART), os.urandom(1234)]
    upload_id = await repo.create_multipart(OBJECT, num_parts=4)
    data_file = upload_dir(repo.root / STAGING_DIR_NAME, upload_id) / DATA_NAME
    inode = data_file.stat().st_ino
    etags = {}
    for number in (2, 4, 1, 3):  # a middle part first sets the part size; the last then has its place too
        etags[number] = await send(repo, upload_id, number, chunks[number - 1])
    with pytest.raises(NotFound):  # nothing visible before completion
        await repo.head(OBJECT)
    listed = [UploadedPart(number, etags[number]) for number in (3, 1, 4, 2)]
    assert await repo.multipart_size(OBJECT, upload_id, listed) == 3 * PART + 1234
    info = await repo.complete_multipart(OBJECT, upload_id, listed)
    whole = b"".join(chunks)
    stored = repo.root / "models" / "model.bin"
    assert stored.stat().st_ino == inode  # the file the parts were written into, renamed: no copy made
    assert copies == []  # and no part's bytes were read back to assemble it
    assert info.size == len(whole)
    assert stored.read_bytes() == whole
    await repo.digests_settled()  # the object's SHA-256 is computed after the answer, as for a large PUT
    assert (await repo.head(OBJECT)).sha256 == hashlib.sha256(whole).hexdigest()
    assert staging_debris(repo) == ["mpu"]


async def test_a_last_part_that_comes_first_is_the_only_one_copied(repo: LocalRepository, copies: list[int]) -> None:
    chunks = [os.urandom(PART), os.urandom(PART), os.urandom(777)]
    upload_id = await repo.create_multipart(OBJECT, num_parts=3)
    etags = {number: await send(repo, upload_id, number, chunks[number - 1]) for number in (3, 1, 2)}
    await repo.complete_multipart(OBJECT, upload_id, [UploadedPart(n, etags[n]) for n in (1, 2, 3)])
    assert copies == [777]  # its place was unknown when it came: kept beside, copied into place at completion
    assert (repo.root / "models" / "model.bin").read_bytes() == b"".join(chunks)


@pytest.mark.parametrize(
    "sizes",
    [
        [PART, PART + 1, 10],  # a middle part of another size
        [3 * MIB, PART, PART],  # the first part sets a size the others do not have
        [PART, PART, PART + 1],  # a last part larger than the others
    ],
    ids=["middle", "first", "last"],
)
async def test_uneven_parts_are_assembled_by_copy(repo: LocalRepository, copies: list[int], sizes: list[int]) -> None:
    chunks = [os.urandom(size) for size in sizes]
    upload_id = await repo.create_multipart(OBJECT, num_parts=len(chunks))
    etags = {number: await send(repo, upload_id, number, chunks[number - 1]) for number in (2, 3, 1)}
    info = await repo.complete_multipart(OBJECT, upload_id, [UploadedPart(n, etags[n]) for n in (1, 2, 3)])
    whole = b"".join(chunks)
    assert copies == sizes  # the copying assembly, every part in number order
    assert info.sha256 == hashlib.sha256(whole).hexdigest()  # hashed while copied, as before
    assert (repo.root / "models" / "model.bin").read_bytes() == whole
    assert staging_debris(repo) == ["mpu"]


async def test_a_wrong_etag_or_a_missing_part_leaves_nothing_and_the_upload_completable(
    repo: LocalRepository, copies: list[int]
) -> None:
    chunks = [os.urandom(PART), os.urandom(PART), os.urandom(99)]
    upload_id = await repo.create_multipart(OBJECT, num_parts=3)
    etags = {number: await send(repo, upload_id, number, chunks[number - 1]) for number in (1, 2, 3)}
    wrong = [
        [UploadedPart(1, etags[1]), UploadedPart(2, etags[1]), UploadedPart(3, etags[3])],  # part 1's ETag for 2
        [UploadedPart(1, etags[1]), UploadedPart(2, "0" * 64), UploadedPart(3, etags[3])],
        [UploadedPart(1, etags[1]), UploadedPart(2, etags[2]), UploadedPart(4, etags[3])],  # never sent
        [UploadedPart(1, etags[1]), UploadedPart(2, "not-hex"), UploadedPart(3, etags[3])],
    ]
    for parts in wrong:
        with pytest.raises(Conflict):
            await repo.complete_multipart(OBJECT, upload_id, parts)
        with pytest.raises(NotFound):
            await repo.head(OBJECT)
        assert not (repo.root / "models").exists()
    await repo.complete_multipart(OBJECT, upload_id, [UploadedPart(n, etags[n]) for n in (1, 2, 3)])
    assert (repo.root / "models" / "model.bin").read_bytes() == b"".join(chunks)
    assert copies == []


async def test_a_retried_part_replaces_the_earlier_try(repo: LocalRepository, copies: list[int]) -> None:
    first, second = os.urandom(PART), os.urandom(PART)
    last = os.urandom(10)
    upload_id = await repo.create_multipart(OBJECT, num_parts=3)
    one = await send(repo, upload_id, 1, os.urandom(PART))
    old = await send(repo, upload_id, 2, first)
    new = await send(repo, upload_id, 2, second)  # its range holds the first try's bytes: kept beside
    three = await send(repo, upload_id, 3, last)
    assert old != new
    with pytest.raises(Conflict):  # the replaced try is gone
        await repo.complete_multipart(OBJECT, upload_id, [UploadedPart(1, one), UploadedPart(2, old)])
    listed = [UploadedPart(1, one), UploadedPart(2, new), UploadedPart(3, three)]
    await repo.complete_multipart(OBJECT, upload_id, listed)
    assert (repo.root / "models" / "model.bin").read_bytes()[PART : 2 * PART] == second
    assert copies == [PART]  # only the retry, into its range


async def test_a_part_that_failed_midway_can_be_sent_again_in_place(repo: LocalRepository, copies: list[int]) -> None:
    chunks = [os.urandom(PART), os.urandom(PART)]
    upload_id = await repo.create_multipart(OBJECT, num_parts=2)

    async def dropped() -> AsyncIterator[bytes]:
        yield chunks[0][:MIB]
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await repo.put_part(OBJECT, upload_id, 1, dropped(), content_length=PART)
    data_file = upload_dir(repo.root / STAGING_DIR_NAME, upload_id) / DATA_NAME
    assert data_file.stat().st_blocks * 512 < MIB  # the cut-short try's blocks were given back
    etags = [await send(repo, upload_id, number, chunks[number - 1]) for number in (1, 2)]
    await repo.complete_multipart(OBJECT, upload_id, [UploadedPart(n, etags[n - 1]) for n in (1, 2)])
    assert (repo.root / "models" / "model.bin").read_bytes() == b"".join(chunks)
    assert copies == []  # the failed try released its range, the retry wrote there


async def test_a_completion_that_leaves_out_later_parts_copies_so_they_stay_listable(
    repo: LocalRepository, copies: list[int]
) -> None:
    chunks = [os.urandom(PART), os.urandom(PART), os.urandom(5)]
    upload_id = await repo.create_multipart(OBJECT, num_parts=3)
    etags = {number: await send(repo, upload_id, number, chunks[number - 1]) for number in (1, 2, 3)}
    await repo.complete_multipart(OBJECT, upload_id, [UploadedPart(1, etags[1]), UploadedPart(2, etags[2])])
    assert (repo.root / "models" / "model.bin").read_bytes() == b"".join(chunks[:2])
    assert copies == [PART, PART]


async def test_a_part_after_completion_cannot_touch_the_object(repo: LocalRepository) -> None:
    chunks = [os.urandom(PART), os.urandom(3)]
    upload_id = await repo.create_multipart(OBJECT, num_parts=2)
    etags = [await send(repo, upload_id, number, chunks[number - 1]) for number in (1, 2)]
    await repo.complete_multipart(OBJECT, upload_id, [UploadedPart(n, etags[n - 1]) for n in (1, 2)])
    with pytest.raises(NotFound):
        await send(repo, upload_id, 1, os.urandom(PART))
    assert (repo.root / "models" / "model.bin").read_bytes() == b"".join(chunks)


async def test_a_part_being_written_keeps_completion_off_the_shared_file(repo: LocalRepository) -> None:
    """A completion while a part streams in place copies the recorded parts instead of taking `data`."""
    chunks = [os.urandom(PART), os.urandom(PART), os.urandom(PART)]
    upload_id = await repo.create_multipart(OBJECT, num_parts=3)
    etags = [await send(repo, upload_id, number, chunks[number - 1]) for number in (1, 2)]
    inside, release = asyncio.Event(), asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield chunks[2][:MIB]
        inside.set()
        await release.wait()
        yield chunks[2][MIB:]

    straggler = asyncio.create_task(repo.put_part(OBJECT, upload_id, 3, slow(), content_length=PART))
    await inside.wait()
    data_file = upload_dir(repo.root / STAGING_DIR_NAME, upload_id) / DATA_NAME
    inode = data_file.stat().st_ino
    await repo.complete_multipart(OBJECT, upload_id, [UploadedPart(n, etags[n - 1]) for n in (1, 2)])
    stored = repo.root / "models" / "model.bin"
    assert stored.stat().st_ino != inode  # a copy: the file a part is still writing never becomes the object
    release.set()
    with pytest.raises((NotFound, Conflict)):
        await straggler
    assert stored.read_bytes() == b"".join(chunks[:2])


async def test_abort_and_sweep_remove_in_place_uploads(repo: LocalRepository) -> None:
    aborted = await repo.create_multipart(OBJECT, num_parts=2)
    await send(repo, aborted, 1, os.urandom(PART))
    await repo.abort_multipart(OBJECT, aborted)
    abandoned = await repo.create_multipart(OBJECT, num_parts=2)
    etag = await send(repo, abandoned, 1, os.urandom(PART))
    assert await repo.sweep_abandoned(3600) == 0  # fresh: kept (the part-size symlink is not followed)
    await asyncio.sleep(1.1)
    assert await repo.sweep_abandoned(1) == 1
    assert staging_debris(repo) == ["mpu"]
    with pytest.raises(NotFound):
        await repo.complete_multipart(OBJECT, abandoned, [UploadedPart(1, etag)])


async def test_parts_in_place_head_for_the_disk_at_their_offsets(
    repo: LocalRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    import repositories.local.streaming as streaming_module

    started: list[tuple[int, int]] = []

    def recording(fd: int, offset: int, length: int) -> None:
        started.append((offset, length))
        start_writeback(fd, offset, length)

    monkeypatch.setattr(streaming_module, "start_writeback", recording)
    size = 2 * WRITEBACK_WINDOW_BYTES
    upload_id = await repo.create_multipart(OBJECT, num_parts=2)
    etags = [
        await repo.put_part(OBJECT, upload_id, number, body(os.urandom(size), MIB), content_length=size)
        for number in (1, 2)
    ]
    assert started == [(offset, WRITEBACK_WINDOW_BYTES) for offset in range(0, 2 * size, WRITEBACK_WINDOW_BYTES)]
    await repo.complete_multipart(OBJECT, upload_id, [UploadedPart(n, etags[n - 1]) for n in (1, 2)])
