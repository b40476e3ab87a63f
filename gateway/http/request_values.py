"""Values read from a request's query string, checked the same way by the API and the UI."""

from __future__ import annotations

from gateway.http.errors import ApiError


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
