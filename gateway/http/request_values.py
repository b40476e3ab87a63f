"""Values read from a request (its query string, its path, the app it reached), checked the same way by
every API and the UI. A path is percent-decoded once, here, into an `ArtifactPath`."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote_to_bytes

from aiohttp import web

from gateway.http.app_keys import REPOSITORY_KEY, SETTINGS_KEY
from gateway.http.errors import ApiError
from repositories import ArtifactPath, ArtifactRepository
from repositories.errors import InvalidPath

ANY_PATH = "{path:[\\s\\S]*}"
"""Route pattern for the rest of the URL; '.*' would stop at a newline, which must reach the validator."""


def whole_number(text: str, name: str, limit: int) -> int:
    """`text` as a whole number from 1 to `limit`; anything else is a 400 that names the parameter."""
    # ASCII only: str.isdigit() admits '²', which int() refuses; and int() refuses over 4300 digits,
    # leading zeros included, so they are stripped before it counts.
    significant = text.lstrip("0")
    digits = text.isascii() and text.isdigit() and len(significant) <= len(str(limit))
    value = int(significant or "0") if digits else 0
    if not 1 <= value <= limit:
        raise ApiError.invalid(f"'{name}' must be a whole number from 1 to {limit}, got '{text[:40]}'")
    return value


def decode_once(encoded: str) -> str:
    try:
        return unquote_to_bytes(encoded).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError.invalid("Invalid path: not UTF-8 after percent-decoding") from None


def parse_path(text: str, *, allow_trailing_slash: bool = False) -> ArtifactPath:
    try:
        return ArtifactPath.parse(text, allow_trailing_slash=allow_trailing_slash)
    except InvalidPath as exc:
        raise ApiError.invalid(exc.message) from None


def query_pairs(request: web.Request) -> list[tuple[str, str]]:
    """Query parameters in order, repeats kept, decoded once (form rules: '+' is a space), strict UTF-8."""
    try:
        return parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise ApiError.invalid("Query string is not UTF-8 after percent-decoding") from None


def query_params(request: web.Request) -> dict[str, str]:
    """Query parameters as `query_pairs` decodes them; the last of a repeated name wins."""
    return dict(query_pairs(request))


def public_base_url(request: web.Request) -> str:
    """This server's address as its clients see it: `--public-url`, else the request's scheme and Host."""
    return (request.app[SETTINGS_KEY].public_url or f"{request.scheme}://{request.host}").rstrip("/")


def repository_of(request: web.Request) -> ArtifactRepository:
    return request.app[REPOSITORY_KEY]
