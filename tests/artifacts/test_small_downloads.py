"""Small objects are read whole when opened and answered in one write; larger local files use sendfile."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from gateway.artifacts.downloads import WHOLE_BODY_BYTES, send_download
from repositories import ArtifactPath, ObjectInfo
from repositories.base import BytesDownload
from repositories.errors import BackendError
from repositories.local import LocalRepository
from repositories.local.reads import READ_WHOLE_BYTES, LocalDownload
from tests.descriptors import open_fds


def info_of(size: int) -> ObjectInfo:
    return ObjectInfo(ArtifactPath.parse("d/f.bin"), size, datetime(2026, 1, 1, tzinfo=UTC), "tag", None)


async def test_a_small_local_file_is_read_when_opened_and_holds_nothing(tmp_path: Path) -> None:
    repo = LocalRepository.open(tmp_path / "dest")
    small, large = os.urandom(READ_WHOLE_BYTES), os.urandom(READ_WHOLE_BYTES + 1)
    (repo.root / "small.bin").write_bytes(small)
    (repo.root / "large.bin").write_bytes(large)
    before = open_fds()
    download = await repo.get(ArtifactPath.parse("small.bin"))
    assert isinstance(download, BytesDownload) and download.file is None
    assert open_fds() == before  # nothing to close: a download dropped early leaks nothing
    assert b"".join([chunk async for chunk in download.iter_range(10, 100)]) == small[10:110]
    async with await repo.get(ArtifactPath.parse("large.bin")) as opened:
        assert isinstance(opened, LocalDownload) and opened.file is not None  # sendfile


async def test_a_whole_body_answers_in_one_response_with_its_range() -> None:
    data = os.urandom(1000)
    whole = await send_download(make_mocked_request("GET", "/f"), BytesDownload(data, info_of(len(data))))
    assert isinstance(whole, web.Response)
    assert (whole.status, whole.body, whole.headers["ETag"]) == (200, data, '"tag"')
    ranged = make_mocked_request("GET", "/f", headers={"Range": "bytes=100-199"})
    part = await send_download(ranged, BytesDownload(data, info_of(len(data))))
    assert isinstance(part, web.Response)
    assert (part.status, part.body, part.headers["Content-Range"]) == (206, data[100:200], "bytes 100-199/1000")


async def test_a_body_shorter_than_its_object_is_an_error_not_a_short_answer() -> None:
    request = make_mocked_request("GET", "/f")
    with pytest.raises(BackendError, match="changed while it was read"):
        await send_download(request, BytesDownload(b"abc", info_of(10)))


def test_the_two_thresholds_agree() -> None:
    """A local file read whole must also be answered whole (else it would stream from memory)."""
    assert READ_WHOLE_BYTES <= WHOLE_BODY_BYTES
