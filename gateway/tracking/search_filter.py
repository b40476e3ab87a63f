"""Parser for MLflow's run search language (``filter`` and ``order_by`` of ``runs/search``), and
for the variant ``logged-models/search`` speaks (`parse_logged_model_filter`).

The grammar and the accept/reject decisions follow MLflow 3.17
(``mlflow.utils.search_utils.SearchUtils`` plus the comparator checks its stores apply),
re-implemented with a small regex scanner so that the runtime does not depend on mlflow or
sqlparse. Nothing here is evaluated: values come out as plain ``str``/``float``/``tuple`` to be
bound as SQL parameters later.

Where MLflow would accept something that only makes sense as an accident of its SQL tokenizer
(keys with stray quote characters left in them, aliases glued onto keys, ``=`` against a list,
Python-literal tricks inside ``IN (...)``), this parser rejects it; see the module's tests for the
exact list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "Comparison",
    "EntityType",
    "InvalidFilter",
    "OrderBy",
    "logged_model_attribute",
    "parse_filter",
    "parse_logged_model_filter",
    "parse_order_by",
]

EntityType = Literal["metric", "param", "tag", "attribute", "dataset"]


class InvalidFilter(ValueError):
    """A ``filter`` or ``order_by`` string that MLflow's search language does not accept."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """One ``<entity>.<key> <op> <value>`` clause of a filter."""

    entity: EntityType
    key: str
    op: str
    value: float | str | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class OrderBy:
    """One ``<entity>.<key> [ASC|DESC]`` clause of an ``order_by`` list."""

    entity: EntityType
    key: str
    ascending: bool


# --- vocabulary -------------------------------------------------------------------------------

_ENTITY_ALIASES: Final[dict[str, EntityType]] = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
    "dataset": "dataset",
    "datasets": "dataset",
}
# MLflow's own spelling of the entity types, used in its error messages.
_MLFLOW_ENTITY_NAMES: Final = "['metric', 'parameter', 'tag', 'attribute', 'dataset']"
_MLFLOW_ENTITY_NAME: Final[dict[EntityType, str]] = {
    "metric": "metric",
    "param": "parameter",
    "tag": "tag",
    "attribute": "attribute",
    "dataset": "dataset",
}

_STRING_ATTRIBUTES: Final = frozenset({"run_id", "run_name", "status", "user_id", "artifact_uri"})
_NUMERIC_ATTRIBUTES: Final = frozenset({"start_time", "end_time"})
_FILTER_ATTRIBUTE_KEYS: Final[dict[str, str]] = {
    **{key: key for key in _STRING_ATTRIBUTES | _NUMERIC_ATTRIBUTES},
    "created": "start_time",
    "Created": "start_time",
    "run name": "run_name",
    "Run name": "run_name",
    "Run Name": "run_name",
}
# MLflow does not accept the "run name" spellings in order_by.
_ORDER_BY_ATTRIBUTE_KEYS: Final[dict[str, str]] = {
    key: canonical for key, canonical in _FILTER_ATTRIBUTE_KEYS.items() if " " not in key
}
_LIST_ATTRIBUTE_KEYS: Final = frozenset({"run_id"})
_DATASET_KEYS: Final = frozenset({"name", "digest", "context"})

_NUMERIC_OPS: Final = frozenset({"=", "!=", ">", ">=", "<", "<="})
# Comparator groups: entity types, with attributes split by value type.
_Kind = Literal["metric", "param", "tag", "string_attribute", "numeric_attribute", "dataset"]
_VALID_OPS: Final[dict[_Kind, frozenset[str]]] = {
    "metric": _NUMERIC_OPS,
    "numeric_attribute": _NUMERIC_OPS,
    "param": frozenset({"=", "!=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"}),
    "tag": frozenset({"=", "!=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"}),
    "string_attribute": frozenset({"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"}),
    "dataset": frozenset({"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"}),
}
_OP_ORDER: Final = ("=", "!=", ">", ">=", "<", "<=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL")

# Entity prefixes that sqlparse reads as SQL keywords (matters only before a digit-led key).
_KEYWORD_ENTITY_WORDS: Final = frozenset({"parameter", "parameters"})
# Words that MLflow's tokenizer (sqlparse) never reads as a name after a dot.
_RESERVED_KEY_SEGMENTS: Final = frozenset({"CASE", "IN", "VALUES", "USING", "FROM", "AS"})

# --- tokens (the patterns mirror sqlparse's lexer where MLflow depends on it) -----------------

_WS: Final = re.compile(r"\s+")
_ORDER_WS: Final = re.compile(r"[ \t\r\n]+")  # what shlex splits order_by clauses on
_AND: Final = re.compile(r"AND(?![$#\w])", re.IGNORECASE)
_OR: Final = re.compile(r"OR(?![$#\w])", re.IGNORECASE)
_WORD: Final = re.compile(r"\w[$#\w]*")
_DIGIT_LED_SEGMENT: Final = re.compile(r"\d[_A-ZÀ-Ü]", re.IGNORECASE)
# Quoted names: the extent is found the way sqlparse finds it; escapes inside are then refused.
_QUOTED_NAME: Final[dict[str, re.Pattern[str]]] = {
    "`": re.compile(r"`(?:``|[^`])*`"),
    '"': re.compile(r'"(?:""|\\"|[^"])*"'),
    "'": re.compile(r"'(?:''|\\'|[^'])*'"),
}
# Quoted values are taken verbatim between the outer quotes, exactly as MLflow does.
_SQ_VALUE: Final = re.compile(r"'(?:''|\\'|[^'])*'")
_DQ_VALUE: Final = re.compile(r'"(?:""|\\"|[^"])*"')
_NUMBER: Final = re.compile(
    r"-?\d+(?:\.\d+)?E-?\d+"
    r"|(?![_A-ZÀ-Ü])-?(?:\d+\.\d*|\.\d+)(?![_A-ZÀ-Ü])"
    r"|(?![_A-ZÀ-Ü])-?\d+(?![_A-ZÀ-Ü])",
    re.IGNORECASE,
)
_SYMBOL_OP: Final = re.compile(r"[<>=~!]+")
_LIKE_OP: Final = re.compile(r"(?:NOT\s+)?(?:LIKE|ILIKE|RLIKE)\b", re.IGNORECASE)
_NOT_IN_OP: Final = re.compile(r"NOT\s+IN\b", re.IGNORECASE)
_IN_OP: Final = re.compile(r"IN\b", re.IGNORECASE)
_IS_NULL_OP: Final = re.compile(r"IS\s+NULL(?![$#\w])", re.IGNORECASE)
_IS_NOT_NULL_OP: Final = re.compile(r"IS\s+NOT NULL\b", re.IGNORECASE)
_ORDER_DIRECTION: Final = re.compile(r"(ASC|DESC)(?![$#\w])", re.IGNORECASE)
# IN (...) lists: plain quoted strings only (no escapes, prefixes or implicit concatenation).
_LIST_WS: Final = re.compile(r"[ \t\f\r\n]*")
_LIST_ITEM: Final = re.compile(r"'([^'\\\r\n]*)'|\"([^\"\\\r\n]*)\"")
_ORDER_BY_UNSAFE_IN_QUOTES: Final[dict[str, str]] = {"`": '"\\', '"': "`\\", "'": "`"}
_UNSAFE_CHAR: Final = re.compile(r"[\x00\ud800-\udfff]")

_SHOWN_LEN: Final = 60


def _shown(value: str) -> str:
    """``repr`` of user text for an error message: always one line, never unbounded."""
    return repr(value) if len(value) <= _SHOWN_LEN else repr(value[:_SHOWN_LEN]) + "..."


def _snippet(text: str, pos: int) -> str:
    return _shown(text[pos:])


class _Scanner:
    """Cursor over one filter or order_by string."""

    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def match(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        found = pattern.match(self.text, self.pos)
        if found is not None:
            self.pos = found.end()
        return found

    def skip_ws(self) -> None:
        self.match(_WS)

    def invalid_clause(self) -> InvalidFilter:
        return InvalidFilter(f"Invalid clause(s) in filter string: {_snippet(self.text, self.pos)}")


# --- identifiers ------------------------------------------------------------------------------


def _quoted_name(sc: _Scanner, quote: str, what: str) -> str:
    """Consume a quoted name and return its content; refuse escaped quote characters inside."""
    found = sc.match(_QUOTED_NAME[quote])
    if found is None:
        raise InvalidFilter(f"Unterminated quoted {what}: {_snippet(sc.text, sc.pos)}")
    content = found.group()[1:-1]
    if quote in content:
        raise InvalidFilter(f"Escaped quote characters are not supported in {what} {_shown(found.group())}")
    return content


def _check_order_by_quoted(key: str, quote: str) -> None:
    """Refuse characters that MLflow's order_by unquoting (backticks to double quotes, then shlex) would alter."""
    if any(char in _ORDER_BY_UNSAFE_IN_QUOTES[quote] for char in key):
        raise InvalidFilter(f"Quote characters and backslashes are not supported in order_by key {_shown(key)}")
    if key != key.rstrip():
        # MLflow strips it when a direction follows and keeps it otherwise.
        raise InvalidFilter(f"Trailing whitespace is not supported in order_by key {_shown(key)}")


def _key_segment(sc: _Scanner) -> str:
    start = sc.pos
    found = sc.match(_WORD)
    if found is None:
        raise InvalidFilter(f"Invalid identifier: expected a key at {_snippet(sc.text, start)}")
    segment = found.group()
    if (
        "$" in segment
        or "#" in segment
        or (segment[0].isdigit() and not _DIGIT_LED_SEGMENT.match(segment))
        or segment.upper() in _RESERVED_KEY_SEGMENTS
    ):
        raise InvalidFilter(f"Invalid identifier key segment {_shown(segment)}; quote the key with backticks")
    return segment


def _parse_key(sc: _Scanner, *, order_by: bool) -> str:
    quote = sc.peek()
    if quote in _QUOTED_NAME:
        key = _quoted_name(sc, quote, "key")
        if order_by:
            _check_order_by_quoted(key, quote)
        return key
    segments = [_key_segment(sc)]
    while sc.peek() == ".":
        sc.pos += 1
        if sc.peek() in _QUOTED_NAME:
            raise InvalidFilter(
                f"Invalid identifier: quote the whole key, not a part of it, at {_snippet(sc.text, sc.pos)}"
            )
        segments.append(_key_segment(sc))
    return ".".join(segments)


def _parse_identifier(sc: _Scanner, *, order_by: bool) -> tuple[EntityType, str]:
    """Parse ``entity.key`` (or a bare attribute name) and return ``(entity, raw key)``."""
    start = sc.pos
    head_quote = sc.peek()
    if head_quote in ("`", '"'):
        head = _quoted_name(sc, head_quote, "identifier")
    elif head_quote == "'":
        raise InvalidFilter(
            f"Invalid comparison clause. Expected 'Identifier' found {_snippet(sc.text, start)}; "
            "quote identifiers with backticks"
        )
    else:
        found = sc.match(_WORD)
        if found is None:
            raise sc.invalid_clause()
        head = found.group()
        head_quote = ""

    if sc.peek() != ".":
        # No entity prefix: an attribute. MLflow splits the raw identifier at its first dot.
        if "." in head:
            entity_part = head_quote + head.split(".", 1)[0]
            raise InvalidFilter(f"Invalid entity type {_shown(entity_part)}. Valid values are {_MLFLOW_ENTITY_NAMES}")
        return "attribute", head

    entity = _ENTITY_ALIASES.get(head) if head_quote != '"' else None
    if entity is None:
        shown = f"{head_quote}{head}{head_quote}" if head_quote == '"' else head
        raise InvalidFilter(f"Invalid entity type {_shown(shown)}. Valid values are {_MLFLOW_ENTITY_NAMES}")
    sc.pos += 1  # the dot
    if not head_quote and head in _KEYWORD_ENTITY_WORDS and sc.peek().isdigit():
        # MLflow's tokenizer does not join a keyword-like prefix with a key that starts with a digit.
        raise InvalidFilter(f"Invalid clause(s) in filter string: {_snippet(sc.text, start)}; quote the key")
    return entity, _parse_key(sc, order_by=order_by)


def _canonical_key(entity: EntityType, key: str, attribute_keys: dict[str, str]) -> str:
    if entity == "attribute":
        canonical = attribute_keys.get(key)
        if canonical is None:
            raise InvalidFilter(
                f"Invalid attribute key {_shown(key)} specified. Valid keys are {sorted(attribute_keys)}"
            )
        return canonical
    if entity == "dataset" and key not in _DATASET_KEYS:
        raise InvalidFilter(f"Invalid dataset key {_shown(key)} specified. Valid keys are {sorted(_DATASET_KEYS)}")
    return key


# --- comparisons ------------------------------------------------------------------------------


def _parse_operator(sc: _Scanner) -> str:
    found = sc.match(_SYMBOL_OP)
    if found is not None:
        return found.group()
    found = sc.match(_LIKE_OP)
    if found is not None:
        return " ".join(found.group().upper().split())
    if sc.match(_NOT_IN_OP) is not None:
        return "NOT IN"
    if sc.match(_IN_OP) is not None:
        return "IN"
    if sc.match(_IS_NOT_NULL_OP) is not None:
        return "IS NOT NULL"
    if sc.match(_IS_NULL_OP) is not None:
        return "IS NULL"
    if sc.at_end():
        raise InvalidFilter("Invalid clause(s) in filter string: the last comparison has no comparator")
    raise sc.invalid_clause()


def _parse_list(sc: _Scanner) -> tuple[str, ...]:
    ill_formed = InvalidFilter(
        "While parsing a list in the query, expected a non-empty list of string values, but got ill-formed list "
        f"at {_snippet(sc.text, sc.pos)}"
    )
    if sc.peek() != "(":
        raise InvalidFilter(f"Expected a parenthesised list of quoted strings after IN at {_snippet(sc.text, sc.pos)}")
    sc.pos += 1
    items: list[str] = []
    while True:
        sc.match(_LIST_WS)
        if sc.peek() == ")":
            sc.pos += 1
            break
        found = sc.match(_LIST_ITEM)
        if found is None:
            raise ill_formed
        items.append(found.group(1) if found.group(1) is not None else found.group(2))
        sc.match(_LIST_WS)
        if sc.peek() == ",":
            sc.pos += 1
        elif sc.peek() == ")":
            sc.pos += 1
            break
        else:
            raise ill_formed
    if not items:
        raise InvalidFilter(
            "While parsing a list in the query, expected a non-empty list of string values, but got empty list"
        )
    return tuple(items)


def _comparison(sc: _Scanner) -> Comparison:
    entity, raw_key = _parse_identifier(sc, order_by=False)
    key = _canonical_key(entity, raw_key, _FILTER_ATTRIBUTE_KEYS)
    kind: _Kind
    if entity == "attribute":
        kind = "numeric_attribute" if key in _NUMERIC_ATTRIBUTES else "string_attribute"
    else:
        kind = entity
    sc.skip_ws()
    op = _parse_operator(sc)

    if op in ("IS NULL", "IS NOT NULL"):
        if entity not in ("tag", "param"):
            raise InvalidFilter(
                "IS NULL / IS NOT NULL is only supported for tags and params, "
                f"not for {_MLFLOW_ENTITY_NAME[entity]!r} {_shown(raw_key)}"
            )
        return Comparison(entity, key, op, None)

    if op in ("IN", "NOT IN"):
        sc.skip_ws()
        values = _parse_list(sc)
        if kind == "string_attribute" and key not in _LIST_ATTRIBUTE_KEYS:
            raise InvalidFilter(
                f"Only {sorted(_LIST_ATTRIBUTE_KEYS)} attributes support comparison with a list of quoted string "
                "values."
            )
        _check_op(kind, op)
        return Comparison(entity, key, op, values)

    _check_op(kind, op)
    sc.skip_ws()
    value_start = sc.pos
    found = sc.match(_SQ_VALUE) or sc.match(_DQ_VALUE)
    if found is not None:
        if kind in ("metric", "numeric_attribute"):
            raise InvalidFilter(_numeric_expected(entity, key, _shown(found.group())))
        return Comparison(entity, key, op, found.group()[1:-1])
    found = sc.match(_NUMBER)
    if found is not None:
        if kind not in ("metric", "numeric_attribute"):
            raise InvalidFilter(
                f"Expected a quoted string value for {_MLFLOW_ENTITY_NAME[entity]} (e.g. 'my-value'). "
                f"Got value {_shown(found.group())}"
            )
        return Comparison(entity, key, op, float(found.group()))
    if sc.peek() == "(":
        raise InvalidFilter(f"Invalid comparator {_shown(op)} for a list value; use IN or NOT IN")
    if sc.at_end():
        raise InvalidFilter("Invalid clause(s) in filter string: the last comparison has no value")
    shown = _snippet(sc.text, value_start)
    if kind in ("metric", "numeric_attribute"):
        raise InvalidFilter(_numeric_expected(entity, key, shown))
    raise InvalidFilter(
        f"Parameter value is either not quoted or unidentified quote types used for string value {shown}. "
        "Use either single or double quotes."
    )


def _numeric_expected(entity: EntityType, key: str, shown: str) -> str:
    if entity == "metric":
        return f"Expected numeric value type for metric. Found {shown}"
    return f"Expected numeric value type for numeric attribute: {key}. Found {shown}"


def _check_op(kind: _Kind, op: str) -> None:
    valid = _VALID_OPS[kind]
    if op not in valid:
        allowed = ", ".join(repr(o) for o in _OP_ORDER if o in valid)
        raise InvalidFilter(f"Invalid comparator {_shown(op)} not one of {{{allowed}}}")


def _reject_unsafe_characters(text: str) -> None:
    bad = _UNSAFE_CHAR.search(text)
    if bad is not None:
        raise InvalidFilter(f"Search strings may not contain NUL or unpaired surrogate characters (at {bad.start()})")


# --- public API -------------------------------------------------------------------------------


def parse_filter(text: str | None) -> list[Comparison]:
    """Parse an MLflow run search filter such as ``metrics.acc > 0.9 AND tags.team = 'ml'``.

    Clauses are joined by ``AND`` (any case); ``OR``, ``NOT`` and parentheses are not part of the
    language. ``None`` and ``""`` yield ``[]``; a whitespace-only string is rejected, as MLflow does.
    Raises `InvalidFilter`.
    """
    if not text:
        return []
    if text.isspace():
        raise InvalidFilter(f"Invalid filter {_shown(text)}. Could not be parsed.")
    _reject_unsafe_characters(text)
    sc = _Scanner(text)
    clauses: list[Comparison] = []
    # Like MLflow, a leading, trailing or repeated AND is tolerated. Unlike MLflow, clauses must be
    # separated by at least one AND: without it MLflow's tokenizer may merge two clauses into one.
    separated = True
    while True:
        sc.skip_ws()
        if sc.at_end():
            return clauses
        if sc.match(_AND) is not None:
            separated = True
            continue
        if _OR.match(sc.text, sc.pos) is not None:
            raise InvalidFilter(f"Invalid clause(s) in filter string: {_snippet(sc.text, sc.pos)}; OR is not supported")
        if not separated:
            raise InvalidFilter(
                f"Invalid clause(s) in filter string: {_snippet(sc.text, sc.pos)}; clauses must be joined by AND"
            )
        clauses.append(_comparison(sc))
        separated = False


def _order_by_clause(clause: str) -> OrderBy:
    could_not_parse = InvalidFilter(f"Invalid order_by clause {_shown(clause)}. Could not be parsed.")
    if not clause or clause != clause.strip():
        raise could_not_parse
    _reject_unsafe_characters(clause)
    sc = _Scanner(clause)
    try:
        entity, raw_key = _parse_identifier(sc, order_by=True)
    except InvalidFilter as exc:
        raise InvalidFilter(f"Invalid order_by clause {_shown(clause)}: {exc}") from None
    ascending = True
    if not sc.at_end():
        if sc.match(_ORDER_WS) is None:
            raise could_not_parse
        direction = sc.match(_ORDER_DIRECTION)
        if direction is None:
            if sc.match(_WORD) is not None and sc.at_end():
                raise InvalidFilter(f"Invalid ordering key in order_by clause {_shown(clause)}.")
            raise could_not_parse
        if not sc.at_end():
            raise could_not_parse
        ascending = direction.group().lower() == "asc"
    if entity == "dataset":
        raise InvalidFilter(f"Invalid identifier type 'dataset' in order_by clause {_shown(clause)}")
    try:
        key = _canonical_key(entity, raw_key, _ORDER_BY_ATTRIBUTE_KEYS)
    except InvalidFilter as exc:
        raise InvalidFilter(f"{exc} (in order_by clause {_shown(clause)})") from None
    return OrderBy(entity, key, ascending)


def parse_order_by(clauses: list[str] | None) -> list[OrderBy]:
    """Parse MLflow ``order_by`` clauses such as ``["metrics.acc DESC", "attributes.start_time"]``.

    Each clause is ``<identifier> [ASC|DESC]`` (ascending by default); a field may appear only once.
    Raises `InvalidFilter`.
    """
    parsed: list[OrderBy] = []
    seen: set[tuple[EntityType, str]] = set()
    for clause in clauses or []:
        order = _order_by_clause(clause)
        if (order.entity, order.key) in seen:
            raise InvalidFilter(f"`order_by` contains duplicate fields: {_shown(clause)}")
        seen.add((order.entity, order.key))
        parsed.append(order)
    return parsed


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
    start = sc.pos
    quote = sc.peek()
    if quote in ("`", '"'):
        head = _quoted_name(sc, quote, "identifier")
    elif quote == "'":
        raise InvalidFilter(
            f"Invalid comparison clause. Expected 'Identifier' found {_snippet(sc.text, start)}; "
            "quote identifiers with backticks"
        )
    else:
        found = sc.match(_WORD)
        if found is None:
            raise sc.invalid_clause()
        head, quote = found.group(), ""
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
        clauses.append(_model_comparison(sc))
        separated = False
