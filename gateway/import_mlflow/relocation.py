"""Artifacts kept on local paths (an MLflow file store's, or a server's own `./mlartifacts` root
written as a path) that the gateway's location policy refuses: reported, or copied with
`--copy-artifacts-to` into a repository (local, S3, Azure), streamed and verified by SHA-256, the
locations then rewritten to `mlflow-artifacts:/...` under that destination."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from repositories import ArtifactPath, ArtifactRepository
from repositories.digests import ExpectedDigests

_CHUNK = 1 << 20


def local_path(uri: str) -> Path | None:
    """The directory a location names when it is local (a path or a `file:` URI), else None."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme == "" and uri:
        return Path(uri)
    return None


def _sha256(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.digest()


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    file = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(file.read, _CHUNK):
            yield chunk
    finally:
        file.close()


class Relocation:
    """Maps each experiment's local artifact root to `mlflow-artifacts:/<experiment id>` and copies
    the folders that hold artifacts (a run's, a logged model's, a trace's), once each."""

    def __init__(self, roots: dict[int, str], repository: ArtifactRepository | None) -> None:
        self.repository = repository
        self.roots = {
            experiment_id: path.resolve()
            for experiment_id, uri in roots.items()
            if (path := local_path(uri)) is not None
        }
        self.copied_files = 0
        self.copied_bytes = 0

    def new_location(self, uri: str) -> str | None:
        """Where `uri` lives after the move, when it is under a local experiment root."""
        path = local_path(uri)
        if path is None or self.repository is None:
            return None
        path = path.resolve()
        for experiment_id, root in self.roots.items():
            if path == root or root in path.parents:
                relative = path.relative_to(root).as_posix()
                return f"mlflow-artifacts:/{experiment_id}" + ("" if relative == "." else f"/{relative}")
        return None

    async def move(self, uri: str) -> str:
        """Copy the folder `uri` names (when it is one to move) and return its new location, else `uri`."""
        new = self.new_location(uri)
        if new is None or self.repository is None:
            return uri
        source = local_path(uri)
        assert source is not None
        prefix = new.removeprefix("mlflow-artifacts:/")
        for root, _, names in await asyncio.to_thread(lambda: list(os.walk(source))):
            for name in names:
                file = Path(root) / name
                target = ArtifactPath.parse(f"{prefix}/{file.relative_to(source).as_posix()}")
                digest = await asyncio.to_thread(_sha256, file)
                # the repository hashes the stream and stores nothing when it differs from the file's digest
                info = await self.repository.put(
                    target, _chunks(file), expected=ExpectedDigests(sha256=digest), content_length=file.stat().st_size
                )
                self.copied_files += 1
                self.copied_bytes += info.size
        return new

    def rewrite(self, uri: str | None) -> str | None:
        """`uri` as it reads after the move (no copy)."""
        if uri is None:
            return None
        return self.new_location(uri) or uri
