"""Parser for MLflow's search languages: ``filter`` and ``order_by`` of ``runs/search`` and of
``experiments/search`` (``logged-models/search`` speaks a variant: `gateway.tracking.logged_model_filter`).

The grammar and the accept/reject decisions follow MLflow 3.17
(``mlflow.utils.search_utils.SearchUtils`` and ``SearchExperimentsUtils`` plus the comparator
checks its SQL store applies), re-implemented with a small regex scanner so that the runtime does
not depend on mlflow or sqlparse. Nothing here is evaluated: values come out as plain
``str``/``int``/``float``/``tuple`` to be bound as SQL parameters later.

Where MLflow would accept something that only makes sense as an accident of its SQL tokenizer
(keys with stray quote characters left in them, aliases glued onto keys, ``=`` against a list,
Python-literal tricks inside ``IN (...)``), this parser rejects it; see the module's tests for the
exact list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "Comparison",
    "EntityType",
    "InvalidFilter",
    "OrderBy",
    "parse_experiment_filter",
    "parse_experiment_order_by",
    "parse_filter",
    "parse_order_by",
]

EntityType = Literal["metric", "param", "tag", "attribute", "dataset"]


MAX_CLAUSES = 100
"""Comparisons in one filter: far beyond real searches, well within SQLite's expression depth (1,000)."""


class InvalidFilter(ValueError):
    """A ``filter`` or ``order_by`` string that MLflow's search language does not accept."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """One ``<entity>.<key> <op> <value>`` clause of a filter.

    Run filters give a ``float`` for a number; experiment filters an ``int`` (their numeric
    attributes take integer literals only) and ``int`` experiment ids.
    """

    entity: EntityType
    key: str
    op: str
    value: int | float | str | tuple[str, ...] | tuple[int, ...] | None


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

# Experiments (MLflow's SearchExperimentsUtils and its SQL store): fewer prefixes, four attributes.
_EXPERIMENT_ENTITIES: Final[dict[str, EntityType]] = {"attribute": "attribute", "tag": "tag", "tags": "tag"}
_EXPERIMENT_ATTRIBUTE_KEYS: Final[dict[str, str]] = {
    key: key for key in ("name", "experiment_id", "creation_time", "last_update_time")
}
_EXPERIMENT_NUMERIC_ATTRIBUTES: Final = frozenset({"creation_time", "last_update_time"})
_EXPERIMENT_OPS: Final[dict[str, frozenset[str]]] = {
    "name": frozenset({"=", "!=", "LIKE", "ILIKE"}),
    "experiment_id": frozenset({"=", "!=", "IN", "NOT IN"}),
    "numeric": _NUMERIC_OPS,
    "tag": frozenset({"=", "!=", "LIKE", "ILIKE", "IS NULL", "IS NOT NULL"}),
}
_INTEGER_LITERAL: Final = re.compile(r"-?[0-9]+")
_EXPERIMENT_ID: Final = re.compile(r"-?[0-9]{1,19}")  # MLflow's int(), within what a database column holds
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class _Vocabulary:
    """The entity prefixes one search language accepts, and how its errors name them."""

    entities: Mapping[str, EntityType]
    valid_entities: str
    """The end of MLflow's message for an unknown prefix."""
    quoted_entity: bool
    """Whether a backtick-quoted prefix (`` `tags`.x ``) is accepted: MLflow's run parser trims
    the backticks, its experiment parser checks the prefix before it would."""


_RUN_VOCABULARY: Final = _Vocabulary(_ENTITY_ALIASES, f"Valid values are {_MLFLOW_ENTITY_NAMES}", quoted_entity=True)
_EXPERIMENT_VOCABULARY: Final = _Vocabulary(
    _EXPERIMENT_ENTITIES, "Valid entity types are ('attribute', 'tag', 'tags')", quoted_entity=False
)

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


def _verbatim(value: str) -> str:
    """User text shown as MLflow shows it (as typed, quotes included) when that is one short line; else `_shown`."""
    return value if len(value) <= _SHOWN_LEN and value.isprintable() else _shown(value)


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


def _identifier_head(sc: _Scanner) -> tuple[str, str]:
    """The first name of an identifier (an entity, or a bare attribute) and its quote ('' if bare)."""
    start = sc.pos
    quote = sc.peek()
    if quote in ("`", '"'):
        return _quoted_name(sc, quote, "identifier"), quote
    if quote == "'":
        raise InvalidFilter(
            f"Invalid comparison clause. Expected 'Identifier' found {_snippet(sc.text, start)}; "
            "quote identifiers with backticks"
        )
    found = sc.match(_WORD)
    if found is None:
        raise sc.invalid_clause()
    return found.group(), ""


def _parse_identifier(
    sc: _Scanner, *, order_by: bool, vocabulary: _Vocabulary = _RUN_VOCABULARY
) -> tuple[EntityType, str]:
    """Parse ``entity.key`` (or a bare attribute name) and return ``(entity, raw key)``."""
    start = sc.pos
    head, head_quote = _identifier_head(sc)
    if sc.peek() != ".":
        # No entity prefix: an attribute. MLflow splits the raw identifier at its first dot.
        if "." in head:
            entity_part = head_quote + head.split(".", 1)[0]
            raise InvalidFilter(f"Invalid entity type {_shown(entity_part)}. {vocabulary.valid_entities}")
        return "attribute", head

    quoted_as_sqlparse_keeps = head_quote == '"' or (head_quote == "`" and not vocabulary.quoted_entity)
    entity = None if quoted_as_sqlparse_keeps else vocabulary.entities.get(head)
    if entity is None:
        shown = f"{head_quote}{head}{head_quote}" if quoted_as_sqlparse_keeps else head
        raise InvalidFilter(f"Invalid entity type {_shown(shown)}. {vocabulary.valid_entities}")
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
            raise InvalidFilter(_numeric_expected(entity, key, _verbatim(found.group())))
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
    _check_op_in(_VALID_OPS[kind], op)


def _check_op_in(valid: frozenset[str], op: str) -> None:
    if op not in valid:
        allowed = ", ".join(repr(o) for o in _OP_ORDER if o in valid)
        raise InvalidFilter(f"Invalid comparator {_shown(op)} not one of {{{allowed}}}")


def _experiment_comparison(sc: _Scanner) -> Comparison:
    """One clause of an experiment filter: MLflow's checks at parse time, then those its SQL store adds."""
    entity, raw_key = _parse_identifier(sc, order_by=False, vocabulary=_EXPERIMENT_VOCABULARY)
    key = _canonical_key(entity, raw_key, _EXPERIMENT_ATTRIBUTE_KEYS)
    # name and experiment_id have their own comparators; the two times share the numeric ones
    kind = "tag" if entity == "tag" else "numeric" if key in _EXPERIMENT_NUMERIC_ATTRIBUTES else key
    sc.skip_ws()
    op = _parse_operator(sc)

    if op in ("IS NULL", "IS NOT NULL"):
        if entity != "tag":
            raise InvalidFilter(f"IS NULL / IS NOT NULL is only supported for tags, not for attribute {_shown(key)}")
        return Comparison(entity, key, op, None)

    sc.skip_ws()
    if op in ("IN", "NOT IN"):
        values = _parse_list(sc)
        if kind == "name":
            raise InvalidFilter(
                "Only ['experiment_id'] attributes support comparison with a list of quoted string values."
            )
        _check_op_in(_EXPERIMENT_OPS[kind], op)
        return Comparison(entity, key, op, tuple(_experiment_id(value) for value in values))

    value = _experiment_value(sc, key, kind, op)
    _check_op_in(_EXPERIMENT_OPS[kind], op)
    return Comparison(entity, key, op, value)


def _experiment_value(sc: _Scanner, key: str, kind: str, op: str) -> int | str:
    """The value of an experiment comparison: a quoted string, an integer id or an integer literal."""
    start = sc.pos
    found = sc.match(_SQ_VALUE) or sc.match(_DQ_VALUE)
    if found is not None:
        if kind == "numeric":
            raise InvalidFilter(_numeric_expected("attribute", key, _verbatim(found.group())))
        text = found.group()[1:-1]
        return _experiment_id(text) if kind == "experiment_id" else text
    found = sc.match(_NUMBER)
    if found is not None:
        literal = found.group()
        if kind != "numeric":
            if kind == "tag":
                raise InvalidFilter(
                    f"Expected a quoted string value for tag (e.g. 'my-value'). Got value {_verbatim(literal)}"
                )
            raise InvalidFilter(f"Expected a quoted string value for attributes. Got value {_verbatim(literal)}")
        if not _INTEGER_LITERAL.fullmatch(literal):  # MLflow compares the INTEGER columns with integers only
            raise InvalidFilter(f"Invalid value for numeric attribute {key!r}: {str(float(literal))!r}")
        number = int(literal) if len(literal) <= 20 else _INT64_MAX + 1
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise InvalidFilter(
                f"Invalid value for numeric attribute {key!r}: {_shown(literal)} is out of the 64-bit integer range"
            )
        return number
    if sc.peek() == "(":
        raise InvalidFilter(f"Invalid comparator {_shown(op)} for a list value; use IN or NOT IN")
    if sc.at_end():
        raise InvalidFilter("Invalid clause(s) in filter string: the last comparison has no value")
    shown = _snippet(sc.text, start)
    if kind == "numeric":
        raise InvalidFilter(_numeric_expected("attribute", key, shown))
    raise InvalidFilter(
        f"Parameter value is either not quoted or unidentified quote types used for string value {shown}. "
        "Use either single or double quotes."
    )


def _experiment_id(text: str) -> int:
    if not _EXPERIMENT_ID.fullmatch(text):
        raise InvalidFilter(f"Invalid experiment ID {_shown(text)}. Experiment ID must be a valid integer.")
    return int(text)


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
    return _parse_clauses(text, _comparison)


def parse_experiment_filter(text: str | None) -> list[Comparison]:
    """Parse an MLflow experiment search filter such as ``name LIKE 'nlp-%' AND tags.team = 'ml'``.

    The same language as run filters with MLflow's experiment vocabulary: the prefixes
    ``attribute.``, ``tag.`` and ``tags.`` (entity ``"attribute"`` or ``"tag"``); the attributes
    ``name`` (``=``, ``!=``, ``LIKE``, ``ILIKE``), ``experiment_id`` (``=``, ``!=``, ``IN``, ``NOT IN``
    against quoted integers, given as ``int``), ``creation_time`` and ``last_update_time`` (numeric
    comparators against an integer literal, given as ``int``); tags take ``=``, ``!=``, ``LIKE``,
    ``ILIKE``, ``IS NULL`` and ``IS NOT NULL``. Raises `InvalidFilter`.
    """
    return _parse_clauses(text, _experiment_comparison)


def _parse_clauses(text: str | None, comparison: Callable[[_Scanner], Comparison]) -> list[Comparison]:
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
        if len(clauses) == MAX_CLAUSES:
            raise InvalidFilter(
                f"Invalid filter: more than {MAX_CLAUSES} comparisons; split the search or narrow it with IN"
            )
        clauses.append(comparison(sc))
        separated = False


def _order_by_clause(clause: str, vocabulary: _Vocabulary) -> tuple[EntityType, str, bool]:
    """``<identifier> [ASC|DESC]`` as (entity, raw key, ascending); the caller checks entity and key."""
    could_not_parse = InvalidFilter(f"Invalid order_by clause {_shown(clause)}. Could not be parsed.")
    if not clause or clause != clause.strip():
        raise could_not_parse
    _reject_unsafe_characters(clause)
    sc = _Scanner(clause)
    try:
        entity, raw_key = _parse_identifier(sc, order_by=True, vocabulary=vocabulary)
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
    return entity, raw_key, ascending


def _order_by_key(clause: str, entity: EntityType, raw_key: str, attribute_keys: dict[str, str]) -> str:
    try:
        return _canonical_key(entity, raw_key, attribute_keys)
    except InvalidFilter as exc:
        raise InvalidFilter(f"{exc} (in order_by clause {_shown(clause)})") from None


def parse_order_by(clauses: list[str] | None) -> list[OrderBy]:
    """Parse MLflow ``order_by`` clauses such as ``["metrics.acc DESC", "attributes.start_time"]``.

    Each clause is ``<identifier> [ASC|DESC]`` (ascending by default); a field may appear only once.
    Raises `InvalidFilter`.
    """
    parsed: list[OrderBy] = []
    seen: set[tuple[EntityType, str]] = set()
    for clause in clauses or []:
        entity, raw_key, ascending = _order_by_clause(clause, _RUN_VOCABULARY)
        if entity == "dataset":
            raise InvalidFilter(f"Invalid identifier type 'dataset' in order_by clause {_shown(clause)}")
        order = OrderBy(entity, _order_by_key(clause, entity, raw_key, _ORDER_BY_ATTRIBUTE_KEYS), ascending)
        if (order.entity, order.key) in seen:
            raise InvalidFilter(f"`order_by` contains duplicate fields: {_shown(clause)}")
        seen.add((order.entity, order.key))
        parsed.append(order)
    return parsed


def parse_experiment_order_by(clauses: list[str] | None) -> list[OrderBy]:
    """Parse MLflow's experiment ``order_by`` clauses such as ``["creation_time DESC", "name"]``.

    Each clause is one of ``name``, ``experiment_id``, ``creation_time`` and ``last_update_time``
    (optionally ``attribute.``-prefixed) with an optional ``ASC`` or ``DESC``. As in MLflow, a field
    may appear twice (the first decides). Raises `InvalidFilter`.
    """
    parsed: list[OrderBy] = []
    for clause in clauses or []:
        entity, raw_key, ascending = _order_by_clause(clause, _EXPERIMENT_VOCABULARY)
        if entity != "attribute":
            raise InvalidFilter(f"Invalid order_by entity: {entity}")
        parsed.append(OrderBy(entity, _order_by_key(clause, entity, raw_key, _EXPERIMENT_ATTRIBUTE_KEYS), ascending))
    return parsed
