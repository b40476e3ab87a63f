"""Signed, expiring tokens that authorise one part upload through the gateway's own part URL.

MLflow's client sends parts to the URLs it is given without its own credentials, so the URL must
carry its authority: which upload, which object, which part, until when; HMAC-SHA256 signed with
the gateway's signing key (shared by every worker and replica that should accept it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass


class InvalidToken(Exception):
    """The token is malformed, tampered with or expired; the message says which."""


@dataclass(frozen=True, slots=True)
class PartGrant:
    path: str
    upload_id: str
    number: int
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(grant: PartGrant, key: bytes) -> str:
    payload = _b64(
        json.dumps(
            {"p": grant.path, "u": grant.upload_id, "n": grant.number, "e": grant.expires}, separators=(",", ":")
        ).encode()
    )
    signature = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def verify(token: str, key: bytes, *, now: float | None = None) -> PartGrant:
    payload, _, signature = token.partition(".")
    try:
        expected = hmac.new(key, payload.encode(), hashlib.sha256).digest()
        if not signature or not hmac.compare_digest(_unb64(signature), expected):
            raise InvalidToken("part token signature is invalid")
        fields = json.loads(_unb64(payload))
        grant = PartGrant(str(fields["p"]), str(fields["u"]), int(fields["n"]), int(fields["e"]))
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeError):
        raise InvalidToken("part token is malformed") from None
    if grant.expires < (time.time() if now is None else now):
        raise InvalidToken("part token has expired; ask for new part URLs with mpu/create")
    return grant
