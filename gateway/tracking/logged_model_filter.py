"""The filter language of ``logged-models/search``: MLflow's variant of the run search language.

MLflow parses it separately (``mlflow.utils.search_logged_model_utils``); the tokens and the scanner
are the run grammar's (`gateway.tracking.search_filter`), the vocabulary and comparators its own.
"""

from __future__ import annotations

from typing import Final

from gateway.tracking.search_filter import (
    _AND,
    _DQ_VALUE,
    _NUMBER,
    _OR,
    _SQ_VALUE,
    MAX_CLAUSES,
    Comparison,
    EntityType,
    InvalidFilter,
    _identifier_head,
    _parse_key,
    _parse_list,
    _parse_operator,
    _reject_unsafe_characters,
    _Scanner,
    _shown,
    _snippet,
)

# --- logged models ----------------------------------------------------------------------------
#
# `logged-models/search` has a grammar of its own in MLflow (`mlflow.utils.search_logged_model_utils`):
# the four plural entity prefixes only, bare names for the attributes (with a few aliases), the
# string comparators (IN and NOT IN included) for attributes, params and tags, the numeric ones for
# metrics and the two times, and no IS NULL. The tokens are the run grammar's.

_MODEL_ENTITIES: Final[dict[str, EntityType]] = {
    "attributes": "attribute",
    "metrics": "metric",
    "params": "param",
    "tags": "tag",
}
_MODEL_ENTITY_PREFIX: Final[dict[EntityType, str]] = {entity: prefix for prefix, entity in _MODEL_ENTITIES.items()}
MODEL_NUMERIC_ATTRIBUTES: Final = frozenset({"creation_timestamp_ms", "last_updated_timestamp_ms"})
"""The logged-model attributes compared as numbers (milliseconds since the epoch)."""
MODEL_STRING_ATTRIBUTES: Final = frozenset(
    {
        "model_id",
        "experiment_id",
        "name",
        "artifact_location",
        "status",
        "lifecycle_stage",
        "model_type",
        "source_run_id",
        "status_message",
    }
)
"""The logged-model attributes compared as strings: the columns of MLflow's `logged_models` table."""
_MODEL_ATTRIBUTE_ALIASES: Final[dict[str, str]] = {
    "creation_time": "creation_timestamp_ms",
    "creation_timestamp": "creation_timestamp_ms",
    "last_updated_timestamp": "last_updated_timestamp_ms",
}
# In the order MLflow's messages list them.
_MODEL_NUMERIC_OPS: Final = ("<", "<=", ">", ">=", "=", "!=")
_MODEL_STRING_OPS: Final = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_MODEL_SHOWN_FILTER_LEN: Final = 200


def logged_model_attribute(name: str) -> str | None:
    """The canonical name of a logged-model attribute (`creation_time` is `creation_timestamp_ms`), or None."""
    canonical = _MODEL_ATTRIBUTE_ALIASES.get(name, name)
    return canonical if canonical in MODEL_NUMERIC_ATTRIBUTES | MODEL_STRING_ATTRIBUTES else None


def _model_attribute(name: str) -> str:
    canonical = logged_model_attribute(name)
    if canonical is None:
        valid = sorted(MODEL_NUMERIC_ATTRIBUTES | MODEL_STRING_ATTRIBUTES | set(_MODEL_ATTRIBUTE_ALIASES))
        raise InvalidFilter(f"Invalid attribute key {_shown(name)} specified. Valid keys are {valid}")
    return canonical


def _model_identifier(sc: _Scanner) -> tuple[EntityType, str]:
    head, quote = _identifier_head(sc)
    if sc.peek() != ".":
        return "attribute", _model_attribute(head)
    if quote:
        raise InvalidFilter(f"Invalid identifier {_shown(quote + head + quote)}: quote the key, not the entity")
    entity = _MODEL_ENTITIES.get(head)
    if entity is None:
        raise InvalidFilter(f"Invalid entity type: {_shown(head)}. Expected one of {list(_MODEL_ENTITIES)}.")
    sc.pos += 1  # the dot
    key = _parse_key(sc, order_by=False)
    return entity, _model_attribute(key) if entity == "attribute" else key


def _model_comparison(sc: _Scanner) -> Comparison:
    entity, key = _model_identifier(sc)
    shown = f"{_MODEL_ENTITY_PREFIX[entity]}.{key}"
    numeric = entity == "metric" or (entity == "attribute" and key in MODEL_NUMERIC_ATTRIBUTES)
    sc.skip_ws()
    op = _parse_operator(sc)
    allowed = _MODEL_NUMERIC_OPS if numeric else _MODEL_STRING_OPS
    if op not in allowed:
        raise InvalidFilter(f"Invalid comparison operator for {shown}: {_shown(op)}. Expected one of {allowed}.")
    sc.skip_ws()
    if op in ("IN", "NOT IN"):
        return Comparison(entity, key, op, _parse_list(sc))
    value_start = sc.pos
    quoted = sc.match(_SQ_VALUE) or sc.match(_DQ_VALUE)
    number = None if quoted is not None else sc.match(_NUMBER)
    if numeric:
        if number is None:
            found = quoted.group() if quoted is not None else sc.text[value_start:]
            if not found:
                raise InvalidFilter(f"Invalid filter string: the comparison on {shown} has no value")
            raise InvalidFilter(f"Expected a numeric value for {shown}, found {_shown(found)}")
        return Comparison(entity, key, op, float(number.group()))
    if quoted is not None:
        return Comparison(entity, key, op, quoted.group()[1:-1])
    if number is not None:  # as MLflow: `status = 1` compares the text '1'
        return Comparison(entity, key, op, number.group())
    if sc.at_end():
        raise InvalidFilter(f"Invalid filter string: the comparison on {shown} has no value")
    raise InvalidFilter(
        f"Expected a quoted string value for {shown} (e.g. 'my-value'), found {_snippet(sc.text, value_start)}"
    )


def parse_logged_model_filter(text: str | None) -> list[Comparison]:
    """Parse a `logged-models/search` filter such as ``metrics.acc > 0.9 AND params.lr = '0.1'``.

    Comparisons joined by ``AND`` (any case); entities ``attributes.``, ``metrics.``, ``params.``,
    ``tags.`` (a bare name is an attribute). Attribute keys come out canonical
    (`logged_model_attribute`); values as ``float`` (metrics, times), ``str`` or a tuple of ``str``
    (IN, NOT IN). ``None`` and ``""`` yield ``[]``. Raises `InvalidFilter`.
    """
    if not text:
        return []
    shown = repr(text) if len(text) <= _MODEL_SHOWN_FILTER_LEN else repr(text[:_MODEL_SHOWN_FILTER_LEN]) + "..."
    not_a_list = InvalidFilter(
        f"Invalid filter string: {shown}. Expected a list of comparisons separated by 'AND' "
        "(e.g. 'metrics.loss > 0.1 AND params.lr = 0.01')."
    )
    if text.isspace():
        raise not_a_list
    _reject_unsafe_characters(text)
    sc = _Scanner(text)
    clauses: list[Comparison] = []
    separated = True
    while True:
        sc.skip_ws()
        if sc.at_end():
            return clauses
        if sc.match(_AND) is not None:
            separated = True
            continue
        if not separated or _OR.match(sc.text, sc.pos) is not None:
            raise not_a_list
        if len(clauses) == MAX_CLAUSES:
            raise InvalidFilter(
                f"Invalid filter: more than {MAX_CLAUSES} comparisons; split the search or narrow it with IN"
            )
        clauses.append(_model_comparison(sc))
        separated = False
