"""Values the tracking store checks and shapes: keys, strings, numbers, ids, page tokens, times.

Every check raises `InvalidValue` (or `NotFound`) with the words MLflow's clients expect.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import posixpath
import random
import re
import time
from typing import NamedTuple

from gateway.store.errors import InvalidValue, NotFound, StoreError
from gateway.tracking.limits import MAX_KEY

ACTIVE, DELETED = "active", "deleted"
DEFAULT_EXPERIMENT_ID = 0
RUN_NAME_TAG = "mlflow.runName"
_log = logging.getLogger("artifact_gateway.store")
_ADJECTIVES = "able bold calm clever eager fair gentle happy keen lucid merry noble polite quick rare sunny".split()
_NOUNS = "ant bear cat colt crane deer dove eel finch fox goat hawk lark lynx owl pug ram seal toad wolf".split()


def default_run_name() -> str:
    """A memorable default run name, like MLflow's ('bold-owl-42'); not a secret."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(1, 999)}"  # noqa: S311


def now_ms() -> int:
    return int(time.time() * 1000)


def no_run(run_id: object) -> StoreError:
    if run_id is None or run_id == "":
        return missing("run_id")
    if not isinstance(run_id, str):
        return wrong_type(run_id, "run_id")
    return not_found(f"Run with id={run_id} not found")


_SEE_DOCS = "See the API docs for more information about request parameters."


def missing(field: str) -> InvalidValue:
    """MLflow's words for a required field that is absent or empty."""
    return InvalidValue(f"Missing value for required parameter '{field}'. {_SEE_DOCS}")


def wrong_type(value: object, field: str) -> InvalidValue:
    """MLflow's words for a field of the wrong JSON type (its two spaces after 'supplied:' included)."""
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return InvalidValue(
        f"Invalid value {shown} for parameter '{field}' supplied:  Hint: Value was of type "
        f"'{type(value).__name__}'. {_SEE_DOCS}"
    )


def not_found(what: str) -> NotFound:
    return NotFound(what)


def json_number(value: float) -> float | str:
    """protobuf's JSON for a double: NaN and infinities are strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def json_double(value: float) -> str:
    """A double as protobuf's JSON (and `json.dumps` of `json_number`) writes it."""
    number = json_number(float(value))
    return f'"{number}"' if isinstance(number, str) else repr(number)


_NAME = re.compile(r"^[/\w.\- :]*$")


def check_key(key: object, field: str = "key", *, name_field: str | None = None, label: str | None = None) -> str:
    """A metric, param or tag name as MLflow checks it: present (`field`), of safe characters and a
    path that stays itself (`name_field`, MLflow's name for it there), at most 250 characters (`label`)."""
    if key is None or key == "":
        raise missing(field)
    if not isinstance(key, str):
        raise wrong_type(key, field)
    shown_as = name_field or field
    if not _NAME.match(key):
        raise InvalidValue(
            f"Invalid value \"{key}\" for parameter '{shown_as}' supplied: Names may only contain alphanumerics, "
            "underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        )
    resolved = posixpath.normpath(key)
    if resolved != key or resolved == "." or resolved.startswith(("..", "/")):
        raise InvalidValue(
            f"Invalid value \"{key}\" for parameter '{shown_as}' supplied: Names may be treated as files in certain "
            f"cases, and must not resolve to other names when treated as such. This name would resolve to '{resolved}'"
        )
    if len(key) > MAX_KEY:
        raise too_long(label or field, MAX_KEY)
    return key


def too_long(label: str, limit: int) -> InvalidValue:
    return InvalidValue(f"'{label}' exceeds the maximum length of {limit} characters")


def check_length(value: str, limit: int, label: str) -> str:
    """`value` when it has at most `limit` characters; else MLflow's 400 naming `label`."""
    if len(value) > limit:
        raise too_long(label, limit)
    return value


def check_value(value: object, limit: int, field: str, *, label: str | None = None, truncate: bool = False) -> str:
    """A param or tag value: a string (null is empty, as MLflow stores it) of at most `limit`
    characters; a longer one is cut to `limit` when `truncate` (MLflow's default for run params and
    tags), else refused naming `label` (MLflow's name for it there; `field` by default)."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise wrong_type(value, field)
    if len(value) > limit:
        if not truncate:
            raise too_long(label or field, limit)
        _log.warning(
            "value truncated",
            extra={"fields": {"field": field, "length": len(value), "kept": limit}},
        )
        value = value[:limit]
    return value


def metric_value(value: object, field: str = "value") -> float:
    """A metric's value: a JSON number, or a string of one (protobuf's JSON spells NaN and the
    infinities as strings; MLflow's parser takes any numeric string)."""
    if value is None:
        raise missing(field)
    if isinstance(value, bool):
        raise wrong_type(value, field)
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an integer beyond any double
            raise InvalidValue(f"Invalid value {value} for parameter '{field}': out of the range of a double") from None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value.replace("Infinity", "inf"))  # "1.5", "NaN", "-Infinity", as protobuf's parser
    raise wrong_type(value, field)


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def int_field(value: object, field: str, *, default: int | None = None) -> int:
    """A 64-bit integer (a JSON number or a string of one, as protobuf's JSON allows); `default` when
    absent, else MLflow's 'Missing value' 400."""
    if value is None or value == "":
        if default is None:
            raise missing(field)
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise wrong_type(value, field)
    try:
        number = int(value) if not isinstance(value, float) or value.is_integer() else None
    except (ValueError, OverflowError):
        number = None
    if number is None:
        raise wrong_type(value, field)
    if not INT64_MIN <= number <= INT64_MAX:  # what the database (and MLflow's protobufs) can hold
        raise InvalidValue(f"Invalid value {value} for parameter '{field}': out of the 64-bit integer range")
    return number


def possible_experiment_id(number: int) -> bool:
    """Whether an experiment can have this id: the column is 64-bit (an MLflow file store's ids have 18
    digits) and PostgreSQL refuses a query parameter beyond that, so a larger id is not looked up, just not found."""
    return INT64_MIN <= number <= INT64_MAX


class MetricPoint(NamedTuple):
    """One checked metric point of a request (a tuple: a batch builds a thousand, where a frozen dataclass
    took three times as long to make each)."""

    key: str
    value: float
    timestamp: int
    step: int
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None
