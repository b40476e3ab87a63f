"""Request and response integrity headers: Content-MD5 (RFC 1864) and Repr-Digest (RFC 9530)."""

from __future__ import annotations

import base64
import binascii
import re

from multidict import CIMultiDictProxy

from gateway.http.errors import ApiError
from repositories.digests import ExpectedDigests

_DICT_MEMBER = re.compile(r"\s*([a-z][a-z0-9_\-.*]*)\s*=\s*:([A-Za-z0-9+/=]*):\s*(?:;[^,]*)?\s*(?:,|$)")


def _b64(value: str, *, length: int, header: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != length:
        raise ApiError.invalid(f"{header} must hold the base64 of a {length}-byte digest")
    return raw


def _sha256_from_repr_digest(value: str) -> bytes:
    members: dict[str, str] = {}
    position = 0
    while position < len(value):
        match = _DICT_MEMBER.match(value, position)
        if match is None or match.end() == position:
            raise ApiError.invalid("Repr-Digest must look like 'sha-256=:<base64>:' (RFC 9530)")
        members[match.group(1)] = match.group(2)
        position = match.end()
    if "sha-256" not in members:
        raise ApiError.invalid("Repr-Digest has no sha-256 member; sha-256 is the supported algorithm")
    return _b64(members["sha-256"], length=32, header="Repr-Digest sha-256")


def expected_digests(headers: CIMultiDictProxy[str]) -> ExpectedDigests | None:
    """Digests the client promised for the body and whether it wants one back; None when neither."""
    md5 = headers.get("Content-MD5")
    repr_digest = headers.get("Repr-Digest")
    wanted = "sha-256" in headers.get("Want-Repr-Digest", "").lower()
    if md5 is None and repr_digest is None and not wanted:
        return None
    return ExpectedDigests(
        md5=_b64(md5.strip(), length=16, header="Content-MD5") if md5 is not None else None,
        sha256=_sha256_from_repr_digest(repr_digest) if repr_digest is not None else None,
        sha256_wanted=wanted,
    )


def repr_digest(sha256_hex: str) -> str:
    """The Repr-Digest header value for a hex SHA-256."""
    return f"sha-256=:{base64.b64encode(bytes.fromhex(sha256_hex)).decode()}:"
