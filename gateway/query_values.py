"""Values read from a request's query string, checked the same way by the API and the UI."""

from __future__ import annotations

from gateway.errors import ApiError


def whole_number(text: str, name: str, limit: int) -> int:
    """`text` as a whole number from 1 to `limit`; anything else is a 400 that names the parameter."""
    # ASCII only: str.isdigit() admits '²', which int() refuses; and int() refuses over 4300 digits.
    digits = text.isascii() and text.isdigit() and len(text.lstrip("0")) <= len(str(limit))
    if not digits or not 1 <= int(text) <= limit:
        raise ApiError.invalid(f"'{name}' must be a whole number from 1 to {limit}, got '{text[:40]}'")
    return int(text)
