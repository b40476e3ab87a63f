"""Reading the fields of a tracing request: typed values or a 400 naming the field."""

from __future__ import annotations

import datetime
import re
from typing import Any

from aiohttp import web

from gateway.http.app_keys import TRACE_STORE_KEY
from gateway.http.errors import ApiError
from gateway.traces.store import TraceStore


def trace_store(request: web.Request) -> TraceStore:
    return request.app[TRACE_STORE_KEY]


def string(fields: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise ApiError.invalid(f"Missing value for required parameter '{name}'.")
        return None
    if not isinstance(value, str) or "\x00" in value:
        raise ApiError.invalid(f"Invalid value for parameter '{name}': it must be a string without NUL")
    return value


def strings(fields: dict[str, Any], name: str) -> list[str]:
    value = fields.get(name)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) and "\x00" not in item for item in items):
        raise ApiError.invalid(f"Invalid value for parameter '{name}': it must be a list of strings")
    return items


def string_list(fields: dict[str, Any], name: str) -> list[str]:
    """A JSON body's list of strings (a lone string is refused, as MLflow refuses it)."""
    value = fields.get(name, [])
    if not isinstance(value, list):
        raise ApiError.invalid(f"Invalid value for parameter '{name}': it must be a list of strings")
    return strings(fields, name)


def integer(value: object, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ApiError.invalid(f"Invalid value for parameter '{name}': it must be an integer")
    try:
        number = int(str(value))
    except ValueError:
        raise ApiError.invalid(f"Invalid value for parameter '{name}': it must be an integer") from None
    if not -(1 << 63) <= number < 1 << 63:  # what the database and MLflow's protobufs hold
        raise ApiError.invalid(f"Invalid value for parameter '{name}': out of the 64-bit integer range")
    return number


def positive(value: int | None, name: str) -> int | None:
    if value is not None and value < 1:
        raise ApiError.invalid(f"Invalid value for parameter '{name}': it must be 1 or more")
    return value


def string_map(value: object, name: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and "\x00" not in k + v for k, v in value.items()
    ):
        raise ApiError.invalid(f"Invalid value for parameter '{name}': it must map strings to strings")
    return value


_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")
_DURATION = re.compile(r"^(-)?(\d+)(?:\.(\d{1,9}))?s$")


def millis_of_timestamp(value: object, name: str) -> int:
    """Milliseconds since the epoch of a protobuf JSON Timestamp (RFC 3339)."""
    match = _TIMESTAMP.match(value) if isinstance(value, str) else None
    if match is None:
        raise ApiError.invalid(f"Invalid value for parameter '{name}': it must be an RFC 3339 timestamp")
    zone = "+00:00" if match[3] == "Z" else match[3]
    moment = datetime.datetime.fromisoformat(match[1] + zone)
    return int(moment.timestamp()) * 1000 + int((match[2] or "0").ljust(9, "0")[:3])


def millis_of_duration(value: object, name: str) -> int | None:
    if value is None:
        return None
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ApiError.invalid(f"Invalid value for parameter '{name}': it must be a duration such as '1.5s'")
    millis = int(match[2]) * 1000 + int((match[3] or "0").ljust(9, "0")[:3])
    return -millis if match[1] else millis
