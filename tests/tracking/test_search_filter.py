"""The run search parser: what it accepts, what it refuses, and that it agrees with MLflow 3.17.

MLflow is the reference. `SearchUtils.parse_search_filter` only checks syntax; MLflow's stores then
reject bad comparators and entity types, so `_mlflow_filter` / `_mlflow_order_by` below apply the
same checks the SQL store applies (`_get_sqlalchemy_filter_clauses` / `_get_orderby_clauses`).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.exceptions import MlflowException
from mlflow.utils.search_utils import SearchUtils

from gateway.tracking.search_filter import (
    Comparison,
    InvalidFilter,
    OrderBy,
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_filter,
    parse_order_by,
)

C = Comparison

# --- MLflow as the reference --------------------------------------------------------------------

_MLFLOW_ENTITY = {
    "metric": "metric",
    "parameter": "param",
    "tag": "tag",
    "attribute": "attribute",
    "dataset": "dataset",
}


def _store_accepts(entity: str, key: str, op: str) -> bool:
    """The comparator/entity check MLflow's stores run on every parsed clause (raises if invalid)."""
    return bool(
        SearchUtils.is_string_attribute(entity, key, op)
        or SearchUtils.is_numeric_attribute(entity, key, op)
        or SearchUtils.is_metric(entity, op)
        or SearchUtils.is_param(entity, op)
        or SearchUtils.is_tag(entity, op)
        or SearchUtils.is_dataset(entity, op)
    )


def _mlflow_filter(text: str | None) -> list[tuple[str, str, str, Any]]:
    """MLflow's reading of a filter as (entity, key, comparator, value); raises MlflowException."""
    clauses = []
    for clause in SearchUtils.parse_search_filter(text):
        entity, key, op = clause["type"], clause["key"], clause["comparator"].upper()
        if entity == "attribute":
            key = SearchUtils.translate_key_alias(key)
        if not _store_accepts(entity, key, op):
            raise MlflowException(f"Invalid search expression type {entity!r}")
        clauses.append((_MLFLOW_ENTITY[entity], key, op, clause["value"]))
    return clauses


def _mlflow_order_by(clause: str) -> tuple[str, str, bool]:
    entity, key, ascending = SearchUtils.parse_order_by_for_search_runs(clause)
    if entity == "attribute":
        key = SearchUtils.translate_key_alias(key)
    if not _store_accepts(entity, key, "=") or entity == "dataset":
        raise MlflowException(f"Invalid identifier type {entity!r}")
    return _MLFLOW_ENTITY[entity], key, ascending


def _same_value(ours: object, theirs: object) -> bool:
    if ours is None or theirs is None:
        return ours is theirs
    if isinstance(ours, float):
        return ours == float(str(theirs))  # MLflow keeps metric values as the literal's text
    return ours == theirs


def _assert_matches_mlflow(text: str, ours: list[Comparison]) -> None:
    theirs = _mlflow_filter(text)
    assert len(ours) == len(theirs), (ours, theirs)
    for mine, (entity, key, op, value) in zip(ours, theirs, strict=True):
        assert (mine.entity, mine.key, mine.op) == (entity, key, op)
        assert _same_value(mine.value, value), (mine.value, value)


# --- filters MLflow and we both accept ----------------------------------------------------------

VALID: list[tuple[str, list[Comparison]]] = [
    # metrics: every numeric comparator, number forms, quoting of keys
    ("metrics.acc > 0.9", [C("metric", "acc", ">", 0.9)]),
    ("metric.acc >= 1", [C("metric", "acc", ">=", 1.0)]),
    ("metrics.loss < -1.5e-3", [C("metric", "loss", "<", -0.0015)]),
    ("metrics.loss <= .5", [C("metric", "loss", "<=", 0.5)]),
    ("metrics.m = 1E3", [C("metric", "m", "=", 1000.0)]),
    ("metrics.`my metric` != 2", [C("metric", "my metric", "!=", 2.0)]),
    ('metrics."my metric" = 3', [C("metric", "my metric", "=", 3.0)]),
    ("metrics.'my metric' > 1", [C("metric", "my metric", ">", 1.0)]),
    ("metrics.`val.loss` > 0", [C("metric", "val.loss", ">", 0.0)]),
    ("`metrics`.acc > 1", [C("metric", "acc", ">", 1.0)]),
    ("metrics.a>-1", [C("metric", "a", ">", -1.0)]),
    # params: string comparators, both quote styles, IS [NOT] NULL
    ("params.lr = '0.01'", [C("param", "lr", "=", "0.01")]),
    ('param.optimizer != "adam"', [C("param", "optimizer", "!=", "adam")]),
    ("parameter.model LIKE 'resnet%'", [C("param", "model", "LIKE", "resnet%")]),
    ("parameters.model ilike '%NET%'", [C("param", "model", "ILIKE", "%NET%")]),
    ("params.x IS NULL", [C("param", "x", "IS NULL", None)]),
    # tags: dotted keys stay whole, quoted keys, values taken verbatim like MLflow does
    ("tags.mlflow.runName = 'run-1'", [C("tag", "mlflow.runName", "=", "run-1")]),
    ("tag.`team name` = 'ml'", [C("tag", "team name", "=", "ml")]),
    ("tags.`a.b.c` = 'x'", [C("tag", "a.b.c", "=", "x")]),
    ("tags.x is not null", [C("tag", "x", "IS NOT NULL", None)]),
    ("tags.x IS  NULL", [C("tag", "x", "IS NULL", None)]),
    ('tags.x LIKE"%y%"', [C("tag", "x", "LIKE", "%y%")]),
    ("tags.note = ''", [C("tag", "note", "=", "")]),
    ("tags.note = 'it''s'", [C("tag", "note", "=", "it''s")]),  # MLflow does not unescape ''
    ("tags.created = 'x'", [C("tag", "created", "=", "x")]),  # aliases apply to attributes only
    # attributes: string and numeric, prefixes, aliases, IN lists
    ("attributes.run_id IN ('a1', \"b2\")", [C("attribute", "run_id", "IN", ("a1", "b2"))]),
    ("attribute.run_id NOT IN ('a1',)", [C("attribute", "run_id", "NOT IN", ("a1",))]),
    ("run_id in ('x')", [C("attribute", "run_id", "IN", ("x",))]),
    ("attributes.run_id not  in ( 'a' , 'b' , )", [C("attribute", "run_id", "NOT IN", ("a", "b"))]),
    ("attributes.status = 'FINISHED'", [C("attribute", "status", "=", "FINISHED")]),
    ("attr.user_id LIKE 'al%'", [C("attribute", "user_id", "LIKE", "al%")]),
    ("run.artifact_uri ILIKE 's3://%'", [C("attribute", "artifact_uri", "ILIKE", "s3://%")]),
    ("attributes.run_name != 'x'", [C("attribute", "run_name", "!=", "x")]),
    ("`run name` = 'x'", [C("attribute", "run_name", "=", "x")]),
    ("attributes.\"Run Name\" LIKE 'x%'", [C("attribute", "run_name", "LIKE", "x%")]),
    ("created > 1700000000000", [C("attribute", "start_time", ">", 1700000000000.0)]),
    ("attributes.start_time >= 1", [C("attribute", "start_time", ">=", 1.0)]),
    ("attributes.end_time < 2.5", [C("attribute", "end_time", "<", 2.5)]),
    ("start_time = 5", [C("attribute", "start_time", "=", 5.0)]),
    # datasets
    ("dataset.name = 'train'", [C("dataset", "name", "=", "train")]),
    ("datasets.digest IN ('abc', 'def')", [C("dataset", "digest", "IN", ("abc", "def"))]),
    ("dataset.context NOT IN ('eval')", [C("dataset", "context", "NOT IN", ("eval",))]),
    ("dataset.context ILIKE 'tr%'", [C("dataset", "context", "ILIKE", "tr%")]),
    # AND in any case, whitespace, and the stray ANDs MLflow tolerates
    (
        "metrics.a > 1 and params.b = 'x' AnD tags.c != 'y'",
        [C("metric", "a", ">", 1.0), C("param", "b", "=", "x"), C("tag", "c", "!=", "y")],
    ),
    ("\n\tmetrics.a>1\tAND\n tags.b='c'  ", [C("metric", "a", ">", 1.0), C("tag", "b", "=", "c")]),
    ("tags.x='y'AND tags.z='w'", [C("tag", "x", "=", "y"), C("tag", "z", "=", "w")]),
    ("metrics.a > 1 AND", [C("metric", "a", ">", 1.0)]),
    ("AND metrics.a > 1 AND AND tags.t IS NULL", [C("metric", "a", ">", 1.0), C("tag", "t", "IS NULL", None)]),
    (
        "Created < 3 AND status = 'RUNNING'",
        [C("attribute", "start_time", "<", 3.0), C("attribute", "status", "=", "RUNNING")],
    ),
    ("AND", []),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[text for text, _ in VALID])
def test_valid_filter(text: str, expected: list[Comparison]) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[text for text, _ in VALID])
def test_valid_filter_matches_mlflow(text: str, expected: list[Comparison]) -> None:
    _assert_matches_mlflow(text, parse_filter(text))


@pytest.mark.parametrize("text", [None, ""])
def test_empty_filter(text: str | None) -> None:
    assert parse_filter(text) == [] == SearchUtils.parse_search_filter(text)


def test_numeric_values_are_floats() -> None:
    (clause,) = parse_filter("attributes.start_time > 1")
    assert type(clause.value) is float


# --- filters MLflow and we both refuse ----------------------------------------------------------

INVALID: list[str] = [
    # structure
    "metrics.acc > 1 OR metrics.b < 2",
    "NOT metrics.acc > 1",
    "(metrics.acc > 1)",
    "metrics.acc > 1;",
    "metrics.acc > 1 -- comment",
    "metrics.acc > 1 /* comment */",
    "metrics.acc",
    "metrics.acc >",
    "1 < metrics.acc",
    "   ",
    "metrics.a>1AND metrics.b<2",
    "tags.x = 'a' 'b'",
    "tags.x = 'unterminated",
    "tags.x = 'y' && tags.z = 'w'",
    # comparators
    "metrics.acc == 1",
    "metrics.acc <> 1",
    "metrics.acc ! = 1",
    "metrics.acc LIKE 1",
    "params.lr > '1'",
    "tags.x NOT LIKE 'y'",
    "tags.x RLIKE 'y'",
    "tags.x is   not   null",
    "tags.x IS NOT\tNULL",
    "tags.x IS 'a'",
    "tags.x IN ('a')",
    "metrics.x IS NULL",
    "attributes.run_id IS NULL",
    "attributes.status IN ('a')",
    "attributes.run_name NOT IN ('a')",
    "attributes.start_time LIKE 1",
    "attributes.status > 'a'",
    "dataset.name IS NULL",
    "dataset.name > 'a'",
    # values
    "metrics.acc = '1'",
    "metrics.acc > 0x1F",
    "metrics.acc > 1e+5",
    "metrics.acc > +1",
    "metrics.acc > 1_000",
    "params.lr = 1",
    "params.lr = value",
    "tags.x = `y`",
    "attributes.start_time > '1'",
    "attributes.run_id IN ()",
    "attributes.run_id IN (1, 2)",
    "attributes.run_id IN 'a'",
    "attributes.run_id IN ('a',,'b')",
    "attributes.run_id IN (b'a')",
    # identifiers
    "foo.bar = 'a'",
    "Metrics.acc > 1",
    '"metrics".acc > 1',
    "'status' = 'x'",
    "`tags.x` = 'y'",
    "metrics . a > 1",
    "attributes.lifecycle_stage = 'active'",
    "attributes.experiment_id = '1'",
    "dataset.foo = 'a'",
    "tags.my-tag = 'x'",
    "tags.in = 'x'",
    "tags.0 = 'x'",
    "tags.12abc = 'x'",
    "tags.a$b = 'x'",
    "parameters.1a = 'x'",
]


@pytest.mark.parametrize("text", INVALID)
def test_invalid_filter(text: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter(text)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("text", INVALID)
def test_invalid_filter_rejected_by_mlflow(text: str) -> None:
    with pytest.raises(MlflowException):
        _mlflow_filter(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.a > 1 OR metrics.b < 2", "Invalid clause(s) in filter string: 'OR metrics.b < 2'; OR is not"),
        ("metrics.a > 1 metrics.b < 2", "clauses must be joined by AND"),
        ("metrics.a LIKE 1", "Invalid comparator 'LIKE'"),
        ("attributes.lifecycle_stage = 'x'", "Invalid attribute key 'lifecycle_stage'"),
        ("foo.bar = 'x'", "Invalid entity type 'foo'"),
        ("metrics.a = 'x'", "Expected numeric value type for metric"),
        ("params.a = x", "Parameter value is either not quoted"),
        ("attributes.status IN ('a')", "Only ['run_id'] attributes support comparison with a list"),
        ("attributes.run_id IN ()", "expected a non-empty list of string values, but got empty list"),
        ("dataset.name IS NULL", "IS NULL / IS NOT NULL is only supported for tags and params"),
    ],
)
def test_error_messages_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(InvalidFilter, match=re.escape(message)):
        parse_filter(text)


def test_error_message_is_bounded() -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter("attributes." + "x" * 10_000 + " = 'a'")
    assert len(str(caught.value)) < 300


# --- deliberate divergences: MLflow accepts these, we refuse ------------------------------------

STRICTER: list[tuple[str, str]] = [
    ("metrics.a > 1 metrics.b < 2", "clauses without AND between them"),
    ("params.name ILIKE '%' tags.x IS NULL", "MLflow merges this into one clause on key \"name ILIKE '%' tags.x\""),
    ("attributes.run_id = ('a')", "= against a list"),
    ("dataset.name LIKE ('a', 'b')", "LIKE against a list"),
    ("attributes.run_id IN ('a' 'b')", "Python implicit string concatenation"),
    ("attributes.run_id IN ('a''b')", "Python implicit string concatenation"),
    ("attributes.run_id IN (r'a')", "Python string prefix"),
    ("attributes.run_id IN ('a\\x41')", "Python escape sequence"),
    ("attributes.run_id IN (('a'))", "nested parentheses"),
    ("tags.`a``b` = 'x'", "doubled backtick kept verbatim in the key"),
    ("tags.a.`b c` = 'x'", "partly quoted key, MLflow keeps the backticks"),
    ("tags.`a`.b = 'x'", "partly quoted key, MLflow keeps the backticks"),
    ("metrics.acc DESC > 1", "MLflow reads key 'acc DESC'"),
    ("metrics. > 1", "empty unquoted key"),
    ("tags.* = 'x'", "'*' as a key"),
    ("tags.x = 'a\x00b'", "NUL byte, refused by PostgreSQL"),
]


@pytest.mark.parametrize(("text", "why"), STRICTER, ids=[why for _, why in STRICTER])
def test_stricter_than_mlflow(text: str, why: str) -> None:
    with pytest.raises(InvalidFilter):
        parse_filter(text)
    assert _mlflow_filter(text)  # documents the divergence; fails if MLflow starts refusing it


# --- order_by -----------------------------------------------------------------------------------

ORDER_VALID: list[tuple[str, OrderBy]] = [
    ("metrics.acc DESC", OrderBy("metric", "acc", ascending=False)),
    ("metrics.acc", OrderBy("metric", "acc", ascending=True)),
    ("metric.acc asc", OrderBy("metric", "acc", ascending=True)),
    ("metrics.acc Desc", OrderBy("metric", "acc", ascending=False)),
    ("params.lr ASC", OrderBy("param", "lr", ascending=True)),
    ("parameter.lr", OrderBy("param", "lr", ascending=True)),
    ("tags.mlflow.runName DESC", OrderBy("tag", "mlflow.runName", ascending=False)),
    ("metrics.`my metric` DESC", OrderBy("metric", "my metric", ascending=False)),
    ('metrics."my metric"', OrderBy("metric", "my metric", ascending=True)),
    ("metrics.`val.loss`  ASC", OrderBy("metric", "val.loss", ascending=True)),
    ("`metrics`.acc\tDESC", OrderBy("metric", "acc", ascending=False)),
    ("attributes.start_time", OrderBy("attribute", "start_time", ascending=True)),
    ("start_time DESC", OrderBy("attribute", "start_time", ascending=False)),
    ("created", OrderBy("attribute", "start_time", ascending=True)),
    ("attr.status desc", OrderBy("attribute", "status", ascending=False)),
    ("run.run_name", OrderBy("attribute", "run_name", ascending=True)),
    ("attributes.end_time DESC", OrderBy("attribute", "end_time", ascending=False)),
    ("attributes.user_id", OrderBy("attribute", "user_id", ascending=True)),
    ("attributes.artifact_uri", OrderBy("attribute", "artifact_uri", ascending=True)),
    ("attributes.run_id", OrderBy("attribute", "run_id", ascending=True)),
]


@pytest.mark.parametrize(("clause", "expected"), ORDER_VALID, ids=[c for c, _ in ORDER_VALID])
def test_valid_order_by(clause: str, expected: OrderBy) -> None:
    assert parse_order_by([clause]) == [expected]
    assert _mlflow_order_by(clause) == (expected.entity, expected.key, expected.ascending)


def test_order_by_list() -> None:
    assert parse_order_by(["metrics.acc DESC", "attributes.start_time", "params.lr ASC"]) == [
        OrderBy("metric", "acc", ascending=False),
        OrderBy("attribute", "start_time", ascending=True),
        OrderBy("param", "lr", ascending=True),
    ]
    assert parse_order_by(None) == parse_order_by([]) == []


ORDER_INVALID: list[str] = [
    "",
    " metrics.acc",
    "metrics.acc ",
    "metrics.acc DESCENDING",
    "metrics.acc DESC NULLS LAST",
    "metrics.acc DESC DESC",
    "metrics.acc, metrics.b",
    "metrics.acc;",
    "metrics.in",
    "metrics.a-b",
    "foo.bar",
    "Metrics.acc",
    '"metrics".acc',
    "parameters.1a",
    "dataset.name",
    "datasets.digest DESC",
    "attributes.lifecycle_stage",
    "attributes.`run name`",
    "timestamp",
    "timestamp DESC",
]


@pytest.mark.parametrize("clause", ORDER_INVALID)
def test_invalid_order_by(clause: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_order_by([clause])
    assert "\n" not in str(caught.value)
    with pytest.raises(MlflowException):
        _mlflow_order_by(clause)


@pytest.mark.parametrize(
    "clauses",
    [["attributes.start_time", "created DESC"], ["attributes.status", "run.status DESC"]],
)
def test_duplicate_order_by_fields(clauses: list[str]) -> None:
    from mlflow.store.tracking.sqlalchemy_store import _get_orderby_clauses

    with pytest.raises(InvalidFilter, match="duplicate"):
        parse_order_by(clauses)
    with pytest.raises(MlflowException, match="duplicate"):
        _get_orderby_clauses(clauses, None)  # attribute-only clauses need no session


def test_duplicate_metric_order_by_field() -> None:
    with pytest.raises(InvalidFilter, match="duplicate"):
        parse_order_by(["metrics.acc", "metric.acc DESC"])


ORDER_STRICTER: list[str] = [
    "metrics.",  # empty key
    "params.*",
    "tags.`a``b`",  # doubled backtick kept verbatim
    "metrics.`a\\b`",  # MLflow keeps or unescapes the backslash depending on a direction
    "`metrics.acc` DESC",  # accepted by MLflow only when a direction follows
    '"metrics".acc DESC',  # idem
    "metrics.`x ` DESC",  # MLflow strips the space only when a direction follows
]


@pytest.mark.parametrize("clause", ORDER_STRICTER)
def test_order_by_stricter_than_mlflow(clause: str) -> None:
    with pytest.raises(InvalidFilter):
        parse_order_by([clause])
    _mlflow_order_by(clause)  # documents the divergence; fails if MLflow starts refusing it


# --- generated inputs: whatever we accept, MLflow accepts with the same meaning -----------------

_PIECES = [
    *["metrics", "tags", "params", "parameter", "attributes", "dataset", "run_id", "status", "created"],
    *[".", ".", "acc", "x", "1a", "`a b`", '"a b"', "'a b'", "'x'", '"x"', "1", "-1", "1.5", ".5", "1e3"],
    *[" ", " ", " ", "\t", "=", "!=", ">", "<=", "LIKE", "ilike", "IN", "NOT", "IS", "NULL", "AND", "and", "OR"],
    *["(", ")", ",", "('a')", "('a','b')", "`", '"', "'", "\\", "*", "-", "#", "$", ";", "name", "start_time"],
]
_FILTER_PARTS = st.lists(st.sampled_from(_PIECES), min_size=1, max_size=12).map("".join)
_CLAUSES = st.builds(
    "{}.{}{}{}{}{}".format,
    st.sampled_from(["metrics", "tags", "params", "attributes", "dataset", "`tags`", "run"]),
    st.sampled_from(["acc", "`a b`", '"a.b"', "status", "run_id", "start_time", "name", "mlflow.runName", "1a"]),
    st.sampled_from(["", " ", "\n"]),
    st.sampled_from(["=", "!=", ">", "<", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL", "=="]),
    st.sampled_from(["", " ", "\t"]),
    st.sampled_from(["'v'", '"v"', "1", "-2.5", "('a', 'b')", "('a',)", "()", "v", ""]),
)
_FILTERS = st.one_of(_FILTER_PARTS, st.lists(_CLAUSES, min_size=1, max_size=3).map(" AND ".join))


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_FILTERS)
def test_generated_filters_never_accept_more_than_mlflow(text: str) -> None:
    try:
        ours = parse_filter(text)
    except InvalidFilter:
        return
    _assert_matches_mlflow(text, ours)


# --- experiment filters (MLflow's SearchExperimentsUtils plus its SQL store's checks) -----------


def _mlflow_experiment_filter(text: str | None) -> list[tuple[str, str, str, Any]]:
    """MLflow's reading of an experiment filter, with its SQL store's checks; raises MlflowException."""
    from mlflow.store.tracking.sqlalchemy_store import _get_search_experiments_filter_clauses
    from mlflow.utils.search_utils import SearchExperimentsUtils

    parsed = SearchExperimentsUtils.parse_search_filter(text)
    # MLflow's SQL store compares the comparator as typed, so `like` is refused where `LIKE` is not;
    # we take any case, as its run search does (test_experiment_comparators_in_any_case)
    parsed = [{**clause, "comparator": clause["comparator"].upper()} for clause in parsed]
    _get_search_experiments_filter_clauses(parsed, "sqlite")
    return [(clause["type"], clause["key"], clause["comparator"].upper(), clause["value"]) for clause in parsed]


EXPERIMENT_VALID: list[tuple[str, list[Comparison]]] = [
    ("name = 'a'", [C("attribute", "name", "=", "a")]),
    ("attribute.name LIKE 'a%'", [C("attribute", "name", "LIKE", "a%")]),
    ("name ILIKE 'A%'", [C("attribute", "name", "ILIKE", "A%")]),
    ('name != "b"', [C("attribute", "name", "!=", "b")]),
    ("`name` = 'a'", [C("attribute", "name", "=", "a")]),
    ("creation_time > 0", [C("attribute", "creation_time", ">", 0)]),
    ("attribute.creation_time >= 1700000000000", [C("attribute", "creation_time", ">=", 1700000000000)]),
    ("last_update_time <= -5", [C("attribute", "last_update_time", "<=", -5)]),
    ("last_update_time != 7", [C("attribute", "last_update_time", "!=", 7)]),
    ("experiment_id = '1'", [C("attribute", "experiment_id", "=", 1)]),
    ("experiment_id IN ('1', \"22\")", [C("attribute", "experiment_id", "IN", (1, 22))]),
    ("experiment_id NOT IN ('3')", [C("attribute", "experiment_id", "NOT IN", (3,))]),
    ("tags.team = 'Red'", [C("tag", "team", "=", "Red")]),
    ("tag.team LIKE 'r%'", [C("tag", "team", "LIKE", "r%")]),
    ("tags.team ilike 'R%'", [C("tag", "team", "ILIKE", "R%")]),
    ("tags.`my key` IS NULL", [C("tag", "my key", "IS NULL", None)]),
    ('tag."a.b" is not null', [C("tag", "a.b", "IS NOT NULL", None)]),
    ("tags.mlflow.note = 'x'", [C("tag", "mlflow.note", "=", "x")]),
    (
        "name LIKE 'x%' and tags.t != 'y' AND creation_time < 5",
        [C("attribute", "name", "LIKE", "x%"), C("tag", "t", "!=", "y"), C("attribute", "creation_time", "<", 5)],
    ),
]


@pytest.mark.parametrize(("text", "expected"), EXPERIMENT_VALID, ids=[text for text, _ in EXPERIMENT_VALID])
def test_valid_experiment_filter(text: str, expected: list[Comparison]) -> None:
    assert parse_experiment_filter(text) == expected
    theirs = _mlflow_experiment_filter(text)
    assert [(c.entity, c.key, c.op) for c in expected] == [(entity, key, op) for entity, key, op, _ in theirs]
    for mine, (_, key, _, value) in zip(expected, theirs, strict=True):
        if key == "experiment_id":  # MLflow keeps the quoted ids as text and converts them in its store
            value = tuple(int(v) for v in value) if isinstance(value, tuple) else int(value)
        assert mine.value == value and type(mine.value) is type(value), (mine.value, value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # MLflow's words
        ("creation_time > '0'", "Expected numeric value type for numeric attribute: creation_time. Found '0'"),
        ("creation_time LIKE '1%'", "Expected numeric value type for numeric attribute: creation_time. Found '1%'"),
        ("creation_time > 1.5", "Invalid value for numeric attribute 'creation_time': '1.5'"),
        ("last_update_time = 1e3", "Invalid value for numeric attribute 'last_update_time': '1000.0'"),
        (
            "attributes.creation_time > 0",
            "Invalid entity type 'attributes'. Valid entity types are ('attribute', 'tag', 'tags')",
        ),
        ("params.a = 'b'", "Invalid entity type 'params'. Valid entity types are ('attribute', 'tag', 'tags')"),
        ("`tags`.a = 'b'", "Invalid entity type '`tags`'. Valid entity types are ('attribute', 'tag', 'tags')"),
        ("foo = 'b'", "Invalid attribute key 'foo' specified. Valid keys are "),
        ("name IN ('a')", "Only ['experiment_id'] attributes support comparison with a list of quoted string values."),
        ("name IS NULL", "IS NULL / IS NOT NULL is only supported for tags, not for attribute 'name'"),
        ("experiment_id = 'abc'", "Invalid experiment ID 'abc'. Experiment ID must be a valid integer."),
        ("experiment_id = 1", "Expected a quoted string value for attributes. Got value 1"),
        ("tags.t = 1", "Expected a quoted string value for tag (e.g. 'my-value'). Got value 1"),
        ("tags.t = x", "Parameter value is either not quoted"),
        ("name = 'a' OR name = 'b'", "Invalid clause(s) in filter string: "),
        # ours: the comparators that work, in a fixed order
        ("name > 'a'", "Invalid comparator '>' not one of {'=', '!=', 'LIKE', 'ILIKE'}"),
        ("experiment_id > '1'", "Invalid comparator '>' not one of {'=', '!=', 'IN', 'NOT IN'}"),
        ("tags.t > 'a'", "Invalid comparator '>' not one of {'=', '!=', 'LIKE', 'ILIKE', 'IS NULL', 'IS NOT NULL'}"),
        ("tags.t IN ('a')", "Invalid comparator 'IN' not one of"),
        ("creation_time LIKE 1", "Invalid comparator 'LIKE' not one of {'=', '!=', '>', '>=', '<', '<='}"),
        ("creation_time > 99999999999999999999", "is out of the 64-bit integer range"),
    ],
)
def test_invalid_experiment_filter(text: str, message: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_experiment_filter(text)
    assert message in str(caught.value)
    if "out of the 64-bit" not in message:
        with pytest.raises(MlflowException):
            _mlflow_experiment_filter(text)


def test_experiment_comparators_in_any_case() -> None:
    """Looser than MLflow on purpose: its SQL store refuses a lower-case LIKE or ILIKE in an experiment
    filter ('Invalid comparator for tag: ilike'), though its run search takes them."""
    from mlflow.store.tracking.sqlalchemy_store import _get_search_experiments_filter_clauses
    from mlflow.utils.search_utils import SearchExperimentsUtils

    assert parse_experiment_filter("tags.t ilike 'R%' and name like 'a%'") == [
        C("tag", "t", "ILIKE", "R%"),
        C("attribute", "name", "LIKE", "a%"),
    ]
    with pytest.raises(MlflowException, match="Invalid comparator"):
        _get_search_experiments_filter_clauses(
            SearchExperimentsUtils.parse_search_filter("tags.t ilike 'R%'"), "sqlite"
        )


def test_experiment_filter_or_names_the_or() -> None:
    with pytest.raises(InvalidFilter, match=r"Invalid clause\(s\) in filter string: .*OR"):
        parse_experiment_filter("tags.a = 'x' OR tags.b = 'y'")
    with pytest.raises(MlflowException, match=r"Invalid clause\(s\) in filter string: OR"):
        _mlflow_experiment_filter("tags.a = 'x' OR tags.b = 'y'")


def test_run_filters_keep_their_own_vocabulary() -> None:
    """The experiment prefixes and attributes are not the run ones, and the other way round."""
    assert parse_filter("tag.team = 'x'") == [C("tag", "team", "=", "x")]
    with pytest.raises(InvalidFilter, match="Invalid attribute key 'name'"):
        parse_filter("name = 'x'")
    with pytest.raises(InvalidFilter, match="Invalid entity type 'metrics'"):
        parse_experiment_filter("metrics.a > 1")


EXPERIMENT_ORDER_VALID: list[tuple[str, OrderBy]] = [
    ("name", OrderBy("attribute", "name", ascending=True)),
    ("attribute.name DESC", OrderBy("attribute", "name", ascending=False)),
    ("experiment_id asc", OrderBy("attribute", "experiment_id", ascending=True)),
    ("creation_time Desc", OrderBy("attribute", "creation_time", ascending=False)),
    ("last_update_time", OrderBy("attribute", "last_update_time", ascending=True)),
    ("`name` DESC", OrderBy("attribute", "name", ascending=False)),
]


@pytest.mark.parametrize(("clause", "expected"), EXPERIMENT_ORDER_VALID, ids=[c for c, _ in EXPERIMENT_ORDER_VALID])
def test_valid_experiment_order_by(clause: str, expected: OrderBy) -> None:
    from mlflow.utils.search_utils import SearchExperimentsUtils

    assert parse_experiment_order_by([clause]) == [expected]
    assert SearchExperimentsUtils.parse_order_by_for_search_experiments(clause) == (
        expected.entity,
        expected.key,
        expected.ascending,
    )


def test_experiment_order_by_list_may_repeat_a_field_as_mlflow() -> None:
    assert parse_experiment_order_by(["name", "name DESC"]) == [
        OrderBy("attribute", "name", ascending=True),
        OrderBy("attribute", "name", ascending=False),
    ]
    assert parse_experiment_order_by(None) == parse_experiment_order_by([]) == []


@pytest.mark.parametrize(
    ("clause", "message"),
    [
        ("tags.team", "Invalid order_by entity: tag"),
        ("tag.team DESC", "Invalid order_by entity: tag"),
        ("bogus", "Invalid attribute key 'bogus' specified. Valid keys are "),
        ("name ASCENDING", "Invalid ordering key in order_by clause 'name ASCENDING'."),
        ("attributes.name", "Invalid entity type 'attributes'. Valid entity types are ('attribute', 'tag', 'tags')"),
        ("start_time", "Invalid attribute key 'start_time' specified."),
        ("name DESC NULLS LAST", "Could not be parsed."),
        ("", "Could not be parsed."),
    ],
)
def test_invalid_experiment_order_by(clause: str, message: str) -> None:
    from mlflow.store.tracking.sqlalchemy_store import _get_search_experiments_order_by_clauses

    with pytest.raises(InvalidFilter) as caught:
        parse_experiment_order_by([clause])
    assert message in str(caught.value)
    with pytest.raises(MlflowException):
        _get_search_experiments_order_by_clauses([clause])


_EXPERIMENT_CLAUSES = st.builds(
    "{}{}{}{}{}{}".format,
    st.sampled_from(["", "attribute.", "attributes.", "tag.", "tags.", "`tags`.", "params."]),
    st.sampled_from(["name", "experiment_id", "creation_time", "last_update_time", "team", "`a b`", "x.y", "foo"]),
    st.sampled_from(["", " ", "\n"]),
    st.sampled_from(["=", "!=", ">", "<=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL", "=="]),
    st.sampled_from(["", " "]),
    st.sampled_from(["'v'", '"v"', "'12'", "1", "-2", "1.5", "('1', '2')", "('a',)", "()", "v", ""]),
)


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.lists(_EXPERIMENT_CLAUSES, min_size=1, max_size=3).map(" AND ".join), _FILTER_PARTS))
def test_generated_experiment_filters_never_accept_more_than_mlflow(text: str) -> None:
    try:
        ours = parse_experiment_filter(text)
    except InvalidFilter:
        return
    theirs = _mlflow_experiment_filter(text)
    assert [(c.entity, c.key, c.op) for c in ours] == [(entity, key, op) for entity, key, op, _ in theirs]
