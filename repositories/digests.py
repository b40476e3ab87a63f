"""Digests computed while bytes stream by, and verification against what a client promised."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from repositories.errors import ChecksumMismatch


@dataclass(frozen=True, slots=True)
class ExpectedDigests:
    """What a client said about an upload's digests: raw digests to verify (Content-MD5,
    Repr-Digest sha-256), and whether it asked for the SHA-256 back (Want-Repr-Digest)."""

    md5: bytes | None = None
    sha256: bytes | None = None
    sha256_wanted: bool = False


class DigestAccumulator:
    """SHA-256 of everything fed to it (and MD5 only when the client asked for a check).

    `update` hashes in C with the GIL released for large buffers: call it off the event loop.
    """

    def __init__(self, expected: ExpectedDigests | None = None) -> None:
        self._expected = expected or ExpectedDigests()
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False) if self._expected.md5 is not None else None
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._sha256.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        self.size += len(data)

    def finish(self) -> str:
        """Return the hex SHA-256; raise `ChecksumMismatch` if a promised digest differs."""
        sha256 = self._sha256.digest()
        if self._expected.sha256 is not None and sha256 != self._expected.sha256:
            raise ChecksumMismatch("Repr-Digest sha-256 does not match the uploaded bytes")
        if self._md5 is not None and self._md5.digest() != self._expected.md5:
            raise ChecksumMismatch("Content-MD5 does not match the uploaded bytes")
        return sha256.hex()
