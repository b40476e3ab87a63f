"""DeferredDigests on its own: order, the bound on waiting files, hashing at once, deleted files, closing."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path

import pytest

from repositories.deferred_digests import LOGGED_NAMES, MAX_WAITING, DeferredDigests, file_sha256
from tests.descriptors import open_fds

Recorded = list[tuple[int, str, int]]


def recorder() -> tuple[Recorded, DeferredDigests]:
    recorded: Recorded = []
    return recorded, DeferredDigests(lambda fd, sha256, st: recorded.append((st.st_ino, sha256, st.st_size)))


def open_file(path: Path, data: bytes) -> int:
    path.write_bytes(data)
    return os.open(path, os.O_RDWR)


async def test_files_are_hashed_in_order_and_their_descriptors_closed(tmp_path: Path) -> None:
    recorded, digests = recorder()
    before = open_fds()
    datas = [os.urandom(size) for size in (0, 1, (1 << 20) - 1, 1 << 20, 3 * (1 << 20) + 5)]
    for index, data in enumerate(datas):
        assert digests.add(open_file(tmp_path / f"{index}.bin", data), f"{index}.bin")
    await digests.settled()
    expected = [
        ((tmp_path / f"{index}.bin").stat().st_ino, hashlib.sha256(data).hexdigest(), len(data))
        for index, data in enumerate(datas)
    ]
    assert recorded == expected
    assert open_fds() == before


async def test_past_the_bound_a_file_is_refused_and_can_be_hashed_at_once(tmp_path: Path) -> None:
    recorded, digests = recorder()
    before = open_fds()
    fds = [open_file(tmp_path / f"{index}.bin", b"x" * index) for index in range(MAX_WAITING + 1)]
    accepted = [digests.add(fd, f"{index}.bin") for index, fd in enumerate(fds)]  # the loop has no turn yet
    assert accepted == [True] * MAX_WAITING + [False]
    sha256 = hashlib.sha256(b"x" * MAX_WAITING).hexdigest()
    assert digests.hash_now(fds[-1]) == sha256
    assert recorded == [((tmp_path / f"{MAX_WAITING}.bin").stat().st_ino, sha256, MAX_WAITING)]
    await digests.settled()
    assert sorted(size for _, _, size in recorded) == list(range(MAX_WAITING + 1))
    assert open_fds() == before  # hash_now closed the refused descriptor too
    assert digests.add(open_file(tmp_path / "after.bin", b"after"), "after.bin")  # room again
    await digests.settled()
    assert recorded[-1][1] == hashlib.sha256(b"after").hexdigest()


def test_hashing_at_once_gives_nothing_for_a_deleted_file_and_records_nothing(tmp_path: Path) -> None:
    recorded, digests = recorder()
    fd = open_file(tmp_path / "gone.bin", b"bytes")
    (tmp_path / "gone.bin").unlink()
    before = open_fds()
    assert digests.hash_now(fd) is None
    assert recorded == [] and open_fds() == before - 1


async def test_a_file_deleted_before_its_turn_is_not_recorded(tmp_path: Path) -> None:
    recorded, digests = recorder()
    digests.add(open_file(tmp_path / "gone.bin", b"bytes"), "gone.bin")
    (tmp_path / "gone.bin").unlink()
    await digests.settled()
    assert recorded == []


async def test_closing_stops_releases_every_waiting_descriptor_and_names_the_files_left(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorded, digests = recorder()
    before = open_fds()
    names = [f"run/{index}.bin" for index in range(LOGGED_NAMES + 2)]
    for index, name in enumerate(names):
        digests.add(open_file(tmp_path / f"{index}.bin", os.urandom(4 << 20)), name)
    await asyncio.sleep(0)  # the first one may start
    with caplog.at_level(logging.WARNING, logger="artifact_gateway"):
        await digests.close()
    assert len(recorded) <= 1
    assert open_fds() == before
    [warning] = [record for record in caplog.records if record.levelno == logging.WARNING]
    fields = warning.fields  # type: ignore[attr-defined]
    assert fields["files"] == len(names) - len(recorded)
    assert fields["paths"] == names[len(recorded) :][:LOGGED_NAMES]
    late = open_file(tmp_path / "late.bin", b"late")
    assert not digests.add(late, "late.bin")
    assert digests.hash_now(late) is None  # closed: nothing more is hashed
    assert open_fds() == before


async def test_closing_with_every_file_hashed_logs_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    recorded, digests = recorder()
    digests.add(open_file(tmp_path / "a.bin", b"a"), "a.bin")
    await digests.settled()
    with caplog.at_level(logging.WARNING, logger="artifact_gateway"):
        await digests.close()
    assert len(recorded) == 1 and caplog.records == []


def test_file_sha256_reads_from_the_start_whatever_the_offset(tmp_path: Path) -> None:
    data = os.urandom(2 * (1 << 20) + 17)
    fd = open_file(tmp_path / "f.bin", data)
    try:
        os.lseek(fd, 12345, os.SEEK_SET)
        for block_size in (4093, 1 << 20):
            assert file_sha256(fd, bytearray(block_size)) == (hashlib.sha256(data).hexdigest(), len(data))
    finally:
        os.close(fd)
