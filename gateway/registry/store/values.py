"""Values the registry store checks: names, versions, tags, aliases, stages, page tokens, in MLflow's words."""

from __future__ import annotations

import json
import posixpath
import re
import time

from gateway.store.errors import InvalidValue

MAX_NAME = 256
"""A registered model's name (MLflow's column)."""
MAX_TAG_KEY, MAX_TAG_VALUE = 250, 100_000
MAX_ALIAS = 255
MAX_MODELS, DEFAULT_MODELS = 1000, 100
MAX_VERSIONS, DEFAULT_VERSIONS = 200_000, 10_000
"""Results per search page: MLflow's thresholds and defaults (registered models, model versions)."""
STAGES = ("None", "Staging", "Production", "Archived")
ACTIVE_STAGES = ("Staging", "Production")
READY = "READY"

_SEE_DOCS = "See the API docs for more information about request parameters."
_TAG_NAME = re.compile(r"^[/\w.\- :]*$")
_ALIAS = re.compile(r"^[\w\-]*$")
_VERSION_ALIAS = re.compile(r"^[vV]\d+$")
_INT32_MAX = (1 << 31) - 1


def now_ms() -> int:
    return int(time.time() * 1000)


def missing(field: str) -> InvalidValue:
    return InvalidValue(f"Missing value for required parameter '{field}'. {_SEE_DOCS}")


def wrong_type(value: object, field: str) -> InvalidValue:
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return InvalidValue(
        f"Invalid value {shown} for parameter '{field}' supplied:  Hint: Value was of type "
        f"'{type(value).__name__}'. {_SEE_DOCS}"
    )


def too_long(label: str, limit: int) -> InvalidValue:
    return InvalidValue(f"'{label}' exceeds the maximum length of {limit} characters")


def optional_text(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise wrong_type(value, field)
    if "\x00" in value:
        raise InvalidValue(f"Invalid value for parameter '{field}': it contains a NUL character")
    return value


def model_name(name: object, field: str = "name") -> str:
    """A registered model's name as MLflow checks it (`_validate_model_name`), within its column."""
    if name is None or (isinstance(name, str) and name.strip() == ""):
        raise missing(field)
    if not isinstance(name, str):
        raise wrong_type(name, field)
    if "/" in name or ":" in name:
        raise InvalidValue(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    if "\x00" in name:
        raise InvalidValue(f"Invalid value for parameter '{field}': it contains a NUL character")
    _unique_path(name, field)
    if len(name) > MAX_NAME:
        raise too_long(field, MAX_NAME)
    return name


def _unique_path(name: str, field: str) -> None:
    resolved = posixpath.normpath(name)
    if resolved != name or resolved == "." or resolved.startswith(("..", "/")):
        raise InvalidValue(
            f"Invalid value \"{name}\" for parameter '{field}' supplied: Names may be treated as files in certain "
            f"cases, and must not resolve to other names when treated as such. This name would resolve to '{resolved}'"
        )


def version_number(version: object) -> int:
    """A version as MLflow reads it (`int(version)`), within what the column holds."""
    if version is None or version == "":
        raise missing("version")
    if isinstance(version, bool) or not isinstance(version, int | str):
        raise wrong_type(version, "version")
    try:
        number = int(version)
    except ValueError:
        raise InvalidValue(f"Parameter 'version' must be an integer, got '{version}'.") from None
    return number if -1 <= number <= _INT32_MAX else -1  # beyond the column: no such version


def tag_key(key: object, field: str = "key") -> str:
    if key is None or key == "":
        raise missing(field)
    if not isinstance(key, str):
        raise wrong_type(key, field)
    if not _TAG_NAME.match(key):
        raise InvalidValue(
            f"Invalid value \"{key}\" for parameter '{field}' supplied: Names may only contain alphanumerics, "
            "underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        )
    _unique_path(key, field)
    if len(key) > MAX_TAG_KEY:
        raise too_long(field, MAX_TAG_KEY)
    return key


def tag_value(value: object, field: str = "value") -> str:
    if value is None:
        raise InvalidValue("Tag value cannot be None")
    if not isinstance(value, str):
        raise wrong_type(value, field)
    if "\x00" in value:
        raise InvalidValue(f"Invalid value for parameter '{field}': it contains a NUL character")
    if len(value) > MAX_TAG_VALUE:
        raise too_long(field, MAX_TAG_VALUE)
    return value


def tags(items: list[dict[str, object]]) -> dict[str, str]:
    """A request's tags as key → value (a key given twice: the last wins, as MLflow keeps it)."""
    return {tag_key(item.get("key")): tag_value(item.get("value")) for item in items}


def alias_name(alias: object, *, setting: bool = False) -> str:
    if alias is None or alias == "":
        raise InvalidValue("Registered model alias name cannot be empty.")
    if not isinstance(alias, str):
        raise wrong_type(alias, "alias")
    if not _ALIAS.match(alias):
        raise InvalidValue(
            f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-)."
        )
    if len(alias) > MAX_ALIAS:
        raise too_long("Registered model alias name", MAX_ALIAS)
    if setting and alias.lower() == "latest":
        raise InvalidValue("'latest' alias name (case insensitive) is reserved.")
    if setting and _VERSION_ALIAS.match(alias):
        raise InvalidValue(f"Version alias name '{alias}' is reserved.")
    return alias


def stage(value: object) -> str:
    """MLflow's canonical spelling of a stage, named in any case."""
    if not isinstance(value, str):
        raise wrong_type(value, "stage")
    for canonical in STAGES:
        if value.lower() == canonical.lower():
            return canonical
    raise InvalidValue(f"Invalid Model Version stage: {value}. Value must be one of {', '.join(STAGES)}.")
