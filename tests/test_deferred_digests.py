"""DeferredDigests on its own: order, the bound on waiting files, deleted files, closing."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from repositories.deferred_digests import MAX_WAITING, DeferredDigests, file_sha256

Recorded = list[tuple[int, str, int]]


def recorder() -> tuple[Recorded, DeferredDigests]:
    recorded: Recorded = []
    return recorded, DeferredDigests(lambda fd, sha256, st: recorded.append((st.st_ino, sha256, st.st_size)))


def open_file(path: Path, data: bytes) -> int:
    path.write_bytes(data)
    return os.open(path, os.O_RDWR)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_files_are_hashed_in_order_and_their_descriptors_closed(tmp_path: Path) -> None:
    recorded, digests = recorder()
    before = open_fds()
    datas = [os.urandom(size) for size in (0, 1, (1 << 20) - 1, 1 << 20, 3 * (1 << 20) + 5)]
    for index, data in enumerate(datas):
        assert digests.add(open_file(tmp_path / f"{index}.bin", data))
    await digests.settled()
    expected = [
        ((tmp_path / f"{index}.bin").stat().st_ino, hashlib.sha256(data).hexdigest(), len(data))
        for index, data in enumerate(datas)
    ]
    assert recorded == expected
    assert open_fds() == before


async def test_past_the_bound_a_file_is_refused_and_left_to_the_caller(tmp_path: Path) -> None:
    recorded, digests = recorder()
    fds = [open_file(tmp_path / f"{index}.bin", b"x" * index) for index in range(MAX_WAITING + 1)]
    accepted = [digests.add(fd) for fd in fds]  # nothing is hashed before the loop gets a turn
    assert accepted == [True] * MAX_WAITING + [False]
    os.close(fds[-1])
    await digests.settled()
    assert [size for _, _, size in recorded] == list(range(MAX_WAITING))
    assert digests.add(open_file(tmp_path / "after.bin", b"after"))  # room again
    await digests.settled()
    assert recorded[-1][1] == hashlib.sha256(b"after").hexdigest()


async def test_a_file_deleted_before_its_turn_is_not_recorded(tmp_path: Path) -> None:
    recorded, digests = recorder()
    digests.add(open_file(tmp_path / "gone.bin", b"bytes"))
    (tmp_path / "gone.bin").unlink()
    await digests.settled()
    assert recorded == []


async def test_closing_stops_and_releases_every_waiting_descriptor(tmp_path: Path) -> None:
    recorded, digests = recorder()
    before = open_fds()
    for index in range(8):
        digests.add(open_file(tmp_path / f"{index}.bin", os.urandom(4 << 20)))
    await asyncio.sleep(0)  # the first one may start
    await digests.close()
    assert len(recorded) <= 1
    assert open_fds() == before
    late = open_file(tmp_path / "late.bin", b"late")
    assert not digests.add(late)
    os.close(late)


def test_file_sha256_reads_from_the_start_whatever_the_offset(tmp_path: Path) -> None:
    data = os.urandom(2 * (1 << 20) + 17)
    fd = open_file(tmp_path / "f.bin", data)
    try:
        os.lseek(fd, 12345, os.SEEK_SET)
        for block_size in (4093, 1 << 20):
            assert file_sha256(fd, bytearray(block_size)) == (hashlib.sha256(data).hexdigest(), len(data))
    finally:
        os.close(fd)
