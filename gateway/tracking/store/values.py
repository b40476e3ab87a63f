"""Values the tracking store checks and shapes: keys, strings, numbers, ids, page tokens, times.

Every check raises `InvalidValue` (or `NotFound`) with the words MLflow's clients expect.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
import time
from dataclasses import dataclass

from gateway.store.errors import InvalidValue, NotFound, StoreError
from gateway.tracking.limits import MAX_KEY

ACTIVE, DELETED = "active", "deleted"
DEFAULT_EXPERIMENT_ID = 0
RUN_NAME_TAG = "mlflow.runName"
_ADJECTIVES = "able bold calm clever eager fair gentle happy keen lucid merry noble polite quick rare sunny".split()
_NOUNS = "ant bear cat colt crane deer dove eel finch fox goat hawk lark lynx owl pug ram seal toad wolf".split()


def default_run_name() -> str:
    """A memorable default run name, like MLflow's ('bold-owl-42'); not a secret."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(1, 999)}"  # noqa: S311


def now_ms() -> int:
    return int(time.time() * 1000)


def no_run(run_id: object) -> StoreError:
    if not isinstance(run_id, str) or not run_id:
        return InvalidValue("Missing value for required parameter 'run_id'")
    return not_found(f"Run with id={run_id} not found")


def not_found(what: str) -> NotFound:
    return NotFound(what)


def json_number(value: float) -> float | str:
    """protobuf's JSON for a double: NaN and infinities are strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


MAX_OFFSET = 1 << 53


def page_offset(token: str | None) -> int:
    if not token:
        return 0
    if not isinstance(token, str):
        raise InvalidValue("Invalid page_token: pass back the next_page_token of the previous page")
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        offset = None
    if not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidValue("Invalid page_token: pass back the next_page_token of the previous page")
    return offset


def offset_token(offset: int) -> str:
    """The page token that starts a listing at `offset`, as `next_page_token` carries it."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def check_key(key: object, field: str = "key") -> str:
    if not isinstance(key, str) or not key:
        raise InvalidValue(f"Missing value for required parameter '{field}'")
    if len(key) > MAX_KEY:
        raise InvalidValue(f"'{field}' '{key[:50]}...' is longer than {MAX_KEY} characters")
    if key.startswith("/") or ".." in key.split("/"):
        raise InvalidValue(f"Invalid value '{key}' for parameter '{field}': not a safe name")
    return key


def check_value(value: object, limit: int, field: str) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidValue(f"'{field}' must be a string")
    if len(value) > limit:
        raise InvalidValue(f"'{field}' exceeds the maximum length of {limit} characters")
    return value


def metric_value(value: object) -> float:
    if isinstance(value, bool) or value is None:
        raise InvalidValue("Missing value for required parameter 'value' (a number)")
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an integer beyond any double
            raise InvalidValue(f"Invalid metric value {value}: out of the range of a double") from None
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return float(value.replace("Infinity", "inf"))
    raise InvalidValue(f"Invalid metric value {value!r}: must be a number")


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def int_field(value: object, field: str, *, default: int | None = None) -> int:
    if value is None or value == "":
        if default is None:
            raise InvalidValue(f"Missing value for required parameter '{field}'")
        return default
    if isinstance(value, bool):
        raise InvalidValue(f"'{field}' must be an integer")
    try:
        number: int = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise InvalidValue(f"'{field}' must be an integer, got {value!r}") from None
    if not INT64_MIN <= number <= INT64_MAX:  # what the database (and MLflow's protobufs) can hold
        raise InvalidValue(f"'{field}' is out of the 64-bit integer range: {value!r}")
    return number


INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def possible_experiment_id(number: int) -> bool:
    """Whether an experiment can have this id: the column is 32-bit and PostgreSQL refuses a query
    parameter beyond that, so a larger id is not looked up, just not found."""
    return INT32_MIN <= number <= INT32_MAX


@dataclass(frozen=True, slots=True)
class MetricPoint:
    key: str
    value: float
    timestamp: int
    step: int
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None
