"""The subset of MLflow's trace search language served: conditions joined by AND over the trace's
status, timestamp, execution time, ids, name, run, tags and request metadata; ordering."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, or_
from sqlalchemy.sql.elements import ColumnElement

from gateway.store import schema as s
from gateway.store.errors import InvalidValue

SOURCE_RUN = "mlflow.sourceRun"
TRACE_NAME = "mlflow.traceName"
TRACE = "TRACE"
"""The source type of a trace's links (`entity_associations`)."""

_ATTRIBUTES = {
    "status": "state",
    "state": "state",
    "timestamp_ms": "request_time",
    "timestamp": "request_time",
    "request_time": "request_time",
    "execution_time_ms": "execution_duration",
    "execution_duration": "execution_duration",
    "trace_id": "trace_id",
    "request_id": "trace_id",
    "client_request_id": "client_request_id",
}
_NUMERIC = {"request_time", "execution_duration"}
_CLAUSE = re.compile(
    r"""^\s*(?P<key>[\w.]+(?:\.`[^`]+`|\."[^"]+")?|`[^`]+`)\s*"""
    r"""(?P<op>!=|>=|<=|=|>|<|\bNOT\s+LIKE\b|\bILIKE\b|\bLIKE\b)\s*"""
    r"""(?P<value>'(?:[^']|'')*'|"(?:[^"]|"")*"|-?\d+(?:\.\d+)?)\s*$""",
    re.IGNORECASE,
)
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Clause:
    """One condition: `kind` is 'attribute' (a trace_info column), 'tag', 'metadata' or 'run' (the run
    the trace was made in, or one it was linked to later)."""

    kind: str
    key: str
    op: str
    value: str | int


def _split(text: str) -> list[str]:
    """The AND-joined parts of `text`, not splitting inside quotes."""
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"`":
            quote = char
        elif match := _AND.match(text, index):
            parts.append("".join(current))
            current = []
            index = match.end()
            continue
        current.append(char)
        index += 1
    if quote:
        raise InvalidValue(f"Invalid filter '{text}': a quote is not closed")
    parts.append("".join(current))
    return parts


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"`":
        return text[1:-1].replace(text[0] * 2, text[0])
    return text


def parse(filter_string: str | None) -> list[Clause]:
    """The clauses of `filter_string` (none for an empty filter); a 400 for what is not served."""
    if not filter_string or not filter_string.strip():
        return []
    clauses = []
    for part in _split(filter_string.strip()):
        match = _CLAUSE.match(part)
        if match is None:
            raise InvalidValue(f"Invalid filter '{filter_string}': cannot parse '{part.strip()}'")
        key, op = match["key"], re.sub(r"\s+", " ", match["op"].upper())
        raw = match["value"]
        value: str | int = _unquote(raw) if raw[0] in "'\"" else raw
        prefix, _, name = key.partition(".")
        prefix, name = (prefix.lower(), _unquote(name)) if name else ("", _unquote(key))
        if prefix in ("tags", "tag"):
            clauses.append(Clause("tag", name, op, str(value)))
        elif prefix in ("metadata", "request_metadata"):
            clauses.append(Clause("metadata", name, op, str(value)))
        elif prefix in ("", "trace", "attributes", "attribute") and name.lower() in ("name", "run_id"):
            kind, real = ("tag", TRACE_NAME) if name.lower() == "name" else ("run", SOURCE_RUN)
            clauses.append(Clause(kind, real, op, str(value)))
        elif prefix in ("", "trace", "attributes", "attribute") and name.lower() in _ATTRIBUTES:
            column = _ATTRIBUTES[name.lower()]
            if column in _NUMERIC:
                try:
                    value = int(float(value))
                except ValueError:
                    raise InvalidValue(f"Invalid filter '{filter_string}': {name} takes a number") from None
                if op in ("LIKE", "ILIKE", "NOT LIKE"):
                    raise InvalidValue(f"Invalid filter '{filter_string}': {name} cannot be compared with {op}")
            elif isinstance(value, str) and column == "state":
                value = value.upper()
            clauses.append(Clause("attribute", column, op, value))
        else:
            raise InvalidValue(
                f"Invalid filter '{filter_string}': '{key}' is not a searchable field (served: trace.status, "
                "trace.timestamp_ms, trace.execution_time_ms, trace.trace_id, trace.client_request_id, "
                "trace.name, trace.run_id, tags.<key>, metadata.<key>)"
            )
    return clauses


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    comparisons: dict[str, Any] = {
        "=": lambda: column == value,
        "!=": lambda: column != value,
        ">": lambda: column > value,
        ">=": lambda: column >= value,
        "<": lambda: column < value,
        "<=": lambda: column <= value,
        "LIKE": lambda: column.like(value),
        "NOT LIKE": lambda: column.not_like(value),
        "ILIKE": lambda: column.ilike(value),
    }
    result: ColumnElement[bool] = comparisons[op]()
    return result


def condition(clause: Clause) -> ColumnElement[bool]:
    """The WHERE condition on `trace_info` for `clause`."""
    if clause.kind == "attribute":
        return _compare(s.trace_info.c[clause.key], clause.op, clause.value)
    # Correlated EXISTS: the planner walks trace_info in the page's order and stops once the page is
    # full, where IN (subquery) first collected every matching id (all 100,000 for a common tag).
    table = s.trace_tags if clause.kind == "tag" else s.trace_request_metadata
    trace_id = s.trace_info.c.trace_id
    matching = exists().where(
        table.c.trace_id == trace_id, table.c.key == clause.key, _compare(table.c.value, clause.op, clause.value)
    )
    if clause.kind == "run" and clause.op == "=":
        links = s.entity_associations.c
        linked = exists().where(
            links.source_type == TRACE,
            links.source_id == trace_id,
            links.destination_type == "RUN",
            links.destination_id == clause.value,
        )
        return or_(matching, linked)
    return matching


_ORDER = re.compile(r"^\s*(?:(?:trace|attributes?)\.)?(\w+)\s*(ASC|DESC)?\s*$", re.IGNORECASE)


def order_columns(order_by: list[str]) -> list[Any]:
    """ORDER BY terms for `order_by` (default: newest first), then the trace id to make pages stable."""
    t = s.trace_info.c
    terms: list[Any] = []
    for text in order_by:
        match = _ORDER.match(text)
        if match is None or match[1].lower() not in _ATTRIBUTES:
            raise InvalidValue(f"Invalid order_by clause '{text}': served are timestamp_ms, execution_time_ms, status")
        column = t[_ATTRIBUTES[match[1].lower()]]
        terms.append(column.desc() if (match[2] or "ASC").upper() == "DESC" else column.asc())
    if not terms:
        terms.append(t.request_time.desc())
    return [*terms, t.trace_id]
