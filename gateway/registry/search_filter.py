"""The model registry's search language: `filter` and `order_by` of `registered-models/search` and
`model-versions/search`, as MLflow 3.17 accepts them (`SearchModelUtils`, `SearchModelVersionUtils`).

A small scanner of its own (the tracking parser's vocabulary is runs', and capability packages do
not import each other). Clauses joined by AND; each is `<key> <op> <value>` where the key is an
attribute or `tags.<key>` (a key may be quoted with backticks or double quotes). Nothing is
evaluated: values come out as `str`, `int` or a tuple of `str`, bound as SQL parameters by the store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

MAX_CLAUSES = 100
"""Comparisons in one filter, as the tracking filters allow."""

Entity = Literal["attribute", "tag"]


class InvalidFilter(ValueError):
    """A `filter` or `order_by` MLflow's registry search does not accept; the message is for the client."""


@dataclass(frozen=True, slots=True)
class Comparison:
    entity: Entity
    key: str
    op: str
    value: str | int | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OrderBy:
    key: str
    ascending: bool


@dataclass(frozen=True, slots=True)
class Language:
    """What one of the two searches accepts."""

    string_attributes: frozenset[str]
    numeric_attributes: frozenset[str]
    list_attributes: frozenset[str]
    order_keys: frozenset[str]


STRING_OPS: Final = frozenset({"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"})
NUMERIC_OPS: Final = frozenset({"=", "!=", ">", ">=", "<", "<="})
TAG_OPS: Final = frozenset({"=", "!=", "LIKE", "ILIKE"})

MODELS: Final = Language(
    string_attributes=frozenset({"name"}),
    numeric_attributes=frozenset(),
    list_attributes=frozenset({"name"}),
    order_keys=frozenset({"name", "creation_timestamp", "last_updated_timestamp", "timestamp"}),
)
VERSIONS: Final = Language(
    string_attributes=frozenset({"name", "run_id", "source_path"}),
    numeric_attributes=frozenset({"version_number"}),
    list_attributes=frozenset({"name", "run_id"}),
    order_keys=frozenset({"name", "version_number", "creation_timestamp", "last_updated_timestamp"}),
)

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
      | (?P<backtick>`[^`]*`)
      | (?P<op>!=|>=|<=|=|>|<)
      | (?P<number>-?[0-9]+(?![\w.]))
      | (?P<word>[A-Za-z_]\w*(?:\.\w+)*(?:\.(?:`[^`]*`|"[^"]*"))?)
      | (?P<paren>[(),])
    )""",
    re.VERBOSE,
)
_INT32_MAX = (1 << 31) - 1


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise InvalidFilter(f"Invalid filter '{text}': unexpected text at '{text[pos : pos + 20].strip()}'")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        pos = match.end()
    return found


def _unquote(token: str) -> str:
    quote = token[0]
    return token[1:-1].replace(quote * 2, quote) if quote in "'\"" else token[1:-1]


def _key(kind: str, token: str, language: Language) -> tuple[Entity, str]:
    if kind == "backtick":
        name = _unquote(token)
        entity: Entity = "attribute"
    elif kind == "word":
        prefix, dot, rest = token.partition(".")
        if not dot:
            entity, name = "attribute", token
        elif prefix in ("tag", "tags"):
            entity, name = "tag", rest[1:-1] if rest[:1] in ("`", '"') else rest
        elif prefix == "attribute":
            entity, name = "attribute", rest[1:-1] if rest[:1] in ("`", '"') else rest
        else:
            raise InvalidFilter(f"Invalid entity type '{prefix}'. Valid entity types are ('attribute', 'tag', 'tags')")
    else:
        raise InvalidFilter(f"Invalid clause in filter string: expected a key, got {token}")
    if not name:
        raise InvalidFilter("Invalid filter string: an empty key")
    valid = language.string_attributes | language.numeric_attributes
    if entity == "attribute" and name not in valid:
        raise InvalidFilter(f"Invalid attribute key '{name}' specified. Valid keys are '{set(sorted(valid))}'")
    return entity, name


def _comparison(tokens: list[tuple[str, str]], at: int, language: Language) -> tuple[Comparison, int]:
    if at >= len(tokens):
        raise InvalidFilter("Invalid filter string: a clause is missing after AND")
    entity, key = _key(*tokens[at], language)
    at += 1
    if at >= len(tokens):
        raise InvalidFilter(f"Invalid filter string: '{key}' has no comparison")
    kind, token = tokens[at]
    upper = token.upper()
    if kind == "op":
        op = token
    elif kind == "word" and upper in ("LIKE", "ILIKE", "IN"):
        op = upper
    elif kind == "word" and upper == "NOT" and at + 1 < len(tokens) and tokens[at + 1][1].upper() == "IN":
        op, at = "NOT IN", at + 1
    else:
        raise InvalidFilter(f"Invalid comparator '{token}' in filter string")
    at += 1
    if at >= len(tokens):
        raise InvalidFilter(f"Invalid filter string: '{key} {op}' has no value")
    kind, token = tokens[at]
    if entity == "tag":
        if op not in TAG_OPS:
            raise InvalidFilter(f"Invalid comparator for tag: {op}")
        if kind != "string":
            raise InvalidFilter(f"Expected a quoted string value for tag (e.g. 'my-value'). Got value {token}")
        return Comparison("tag", key, op, _unquote(token)), at + 1
    if key in language.numeric_attributes:
        if op not in NUMERIC_OPS:
            raise InvalidFilter(f"Invalid comparator for attribute {key}: {op}")
        text = _unquote(token) if kind == "string" else token
        if kind not in ("string", "number") or not re.fullmatch(r"-?[0-9]{1,12}", text):
            raise InvalidFilter(f"Invalid value for numeric attribute '{key}': {token!r}")
        number = int(text)
        return Comparison("attribute", key, op, max(min(number, _INT32_MAX + 1), -1)), at + 1
    if op not in STRING_OPS:
        raise InvalidFilter(f"Invalid comparator for attribute: {op}")
    if op in ("IN", "NOT IN"):
        if key not in language.list_attributes or token != "(":  # noqa: S105 (a parenthesis, not a secret)
            raise InvalidFilter(
                f"Expected a quoted string value for attributes, or a list for {sorted(language.list_attributes)}"
            )
        items: list[str] = []
        at += 1
        while True:
            if at >= len(tokens) or tokens[at][0] != "string":
                raise InvalidFilter("While parsing a list in the query, expected string values in parentheses")
            items.append(_unquote(tokens[at][1]))
            at += 1
            if at < len(tokens) and tokens[at][1] == ",":
                at += 1
                continue
            if at < len(tokens) and tokens[at][1] == ")":
                return Comparison("attribute", key, op, tuple(items)), at + 1
            raise InvalidFilter("While parsing a list in the query, expected a closing parenthesis")
    if kind != "string":
        raise InvalidFilter(
            f"Expected a quoted string value or a list of quoted string values for attributes. Got value {token}"
        )
    return Comparison("attribute", key, op, _unquote(token)), at + 1


def parse_filter(text: str | None, language: Language) -> list[Comparison]:
    """The comparisons of `text` (all must hold); empty for no filter."""
    if not text or not text.strip():
        return []
    tokens = _tokens(text)
    comparisons: list[Comparison] = []
    at = 0
    while True:
        comparison, at = _comparison(tokens, at, language)
        comparisons.append(comparison)
        if len(comparisons) > MAX_CLAUSES:
            raise InvalidFilter(f"Invalid filter: more than {MAX_CLAUSES} comparisons")
        if at == len(tokens):
            return comparisons
        if tokens[at][0] != "word" or tokens[at][1].upper() != "AND":
            raise InvalidFilter(f"Invalid clause(s) in filter string: {' '.join(t for _, t in tokens[at:])}")
        at += 1


def parse_order_by(clauses: list[str], language: Language) -> list[OrderBy]:
    """Each `<key> [ASC|DESC]`; a key twice is refused, as MLflow refuses it."""
    found: list[OrderBy] = []
    for clause in clauses:
        parts = clause.split()
        if not parts or len(parts) > 2:
            raise InvalidFilter(f"Invalid order_by clause '{clause}'. Could not be parsed.")
        key = parts[0].strip("`")
        if key.startswith("attribute."):
            key = key[len("attribute.") :]
        direction = parts[1].upper() if len(parts) == 2 else "ASC"
        if direction not in ("ASC", "DESC"):
            raise InvalidFilter(f"Invalid ordering key in order_by clause '{clause}'.")
        if key not in language.order_keys:
            raise InvalidFilter(
                f"Invalid order by key '{key}' specified. Valid keys are {set(sorted(language.order_keys))}"
            )
        if key == "timestamp":
            key = "creation_timestamp"
        if any(item.key == key for item in found):
            raise InvalidFilter(f"`order_by` contains duplicate fields: {clauses}")
        found.append(OrderBy(key, direction == "ASC"))
    return found
