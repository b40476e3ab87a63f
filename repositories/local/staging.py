"""Staging files: where an upload's bytes wait, in `<root>/.artifact-gateway-staging/`, until the commit.

An anonymous (O_TMPFILE) file where the file system allows it, else a named `<uuid>.part`.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from repositories.digests import DigestAccumulator, ExpectedDigests
from repositories.errors import StorageFull

STAGING_DIR_NAME = ".artifact-gateway-staging"
"""Reserved top-level directory holding in-progress uploads; hidden from listings."""

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Staged:
    """An upload in progress: an open staging file and what has been hashed so far.

    `path` is None for an anonymous (O_TMPFILE) file: it has no name until it is linked into place,
    and the kernel frees it if the process dies first, so it can leave no debris to sweep.
    """

    fd: int
    path: Path | None
    digests: DigestAccumulator | None  # None: the SHA-256 is computed after the commit (DeferredDigests)
    closed: bool = field(default=False)
    early_writeback: bool = False  # a durable write: hand each filled window to the disk at once
    base: int = 0  # the file offset of the first byte written (a multipart part written in place)
    written: int = 0
    written_back: int = 0

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)

    def hand_over(self) -> int:
        """The descriptor, now the caller's to close."""
        self.closed = True
        return self.fd


def link_anonymous(fd: int, parent_fd: int, name: str) -> None:
    """Give an O_TMPFILE file `name` in `parent_fd` (linkat through /proc: no CAP_DAC_READ_SEARCH).

    Always with a directory fd: without one, `os.link` calls link(2), which links the /proc symlink
    itself (EXDEV) instead of following it.
    """
    os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=parent_fd, follow_symlinks=True)


def anonymous_files_work(directory: Path) -> bool:
    """Whether O_TMPFILE and linking it through /proc work here (file system, kernel, /proc mounted)."""
    probe = f"probe-{uuid.uuid4().hex}.part"
    try:
        dir_fd = os.open(directory, DIR_FLAGS)
    except OSError:
        return False
    try:
        fd = os.open(".", os.O_WRONLY | os.O_TMPFILE | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        try:
            link_anonymous(fd, dir_fd, probe)
            os.unlink(probe, dir_fd=dir_fd)
        finally:
            os.close(fd)
    except OSError:
        return False
    finally:
        os.close(dir_fd)
    return True


def open_staging(
    staging_dir: Path, expected: ExpectedDigests | None, *, anonymous: bool, digest_now: bool = True
) -> Staged:
    """An anonymous staging file where the file system allows it (`anonymous`), else a named one.

    Open for reading too, so that a file hashed after its commit is read through this descriptor.
    """
    digests = DigestAccumulator(expected) if digest_now else None
    if not anonymous:
        return _open_named_staging(staging_dir, digests)
    flags = os.O_RDWR | os.O_TMPFILE | os.O_NOFOLLOW | os.O_CLOEXEC  # never in a directory a link points to
    try:
        fd = os.open(staging_dir, flags, 0o666)
    except FileNotFoundError:  # staging dir removed by hand while running
        staging_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(staging_dir, flags, 0o666)
    return Staged(fd, None, digests)


def _open_named_staging(staging_dir: Path, digests: DigestAccumulator | None) -> Staged:
    name = f"{uuid.uuid4().hex}.part"
    try:
        dir_fd = os.open(staging_dir, DIR_FLAGS)
    except FileNotFoundError:  # staging dir removed by hand while running
        staging_dir.mkdir(parents=True, exist_ok=True)
        dir_fd = os.open(staging_dir, DIR_FLAGS)
    try:
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    return Staged(fd, staging_dir / name, digests)


def refuse_without_room(staged: Staged, needed: int, what: str) -> None:
    """Discard `staged` and raise StorageFull when `needed` bytes are known not to fit.

    Only a shortcut for a size declared in advance, so that a client is not left sending
    gigabytes that cannot be stored: ENOSPC during the write stays the rule (other writers
    share the disk). `f_bavail` is the room an unprivileged user has; a gateway running as
    root leaves the file system's reserved blocks to the system.
    """
    st = os.fstatvfs(staged.fd)
    free = st.f_bavail * st.f_frsize
    if needed > free:
        discard(staged)
        raise StorageFull(
            f"The artifact destination is full: {what} needs {_mib(needed)} and {_mib(free)} are free; "
            "nothing was stored. Free space on the server's artifact storage, then retry."
        )


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def name_in_staging(staging_dir: Path, staged: Staged) -> Path:
    """Give an anonymous staging file a (sweepable) name in the staging directory."""
    if staged.path is None:
        name = f"{uuid.uuid4().hex}.part"
        staging_fd = os.open(staging_dir, DIR_FLAGS)
        try:
            link_anonymous(staged.fd, staging_fd, name)
        finally:
            os.close(staging_fd)
        staged.path = staging_dir / name
    return staged.path


def discard(staged: Staged) -> None:
    """Close the staging file and remove its name, if it has one."""
    staged.close()
    if staged.path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged.path)
