"""`logged-models/search`: its filter parser against MLflow 3.17's (`parse_filter_string` of
`mlflow.utils.search_logged_model_utils`), and the store's page bound.

Whatever the parser accepts, MLflow's parser accepts with the same meaning, and its store would find
the attribute (MLflow answers a 500 for an unknown one, or for a metric compared with a string; the
gateway refuses those with a 400 before the database). The deliberate differences (double-quoted
values, time aliases after `attributes.`) are tested on their own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.exceptions import MlflowException
from mlflow.store.tracking.dbmodels.models import SqlLoggedModel
from mlflow.utils.search_logged_model_utils import parse_filter_string
from sqlalchemy import insert

from gateway.store import schema as s
from gateway.store.database import create_engine, migrate
from gateway.tracking.limits import MAX_LOGGED_MODELS
from gateway.tracking.logged_model_filter import parse_logged_model_filter
from gateway.tracking.search_filter import Comparison, InvalidFilter
from gateway.tracking.store import TrackingStore

C = Comparison
PREFIX = {"attribute": "attributes", "metric": "metrics", "param": "params", "tag": "tags"}


def mlflow_meaning(text: str) -> list[tuple[str, str, str, Any]]:
    """What MLflow's parser makes of `text`, with the attribute names its store resolves."""
    found = []
    for comparison in parse_filter_string(text):
        key = comparison.entity.key
        if comparison.entity.type.value == "attributes":
            key = SqlLoggedModel.ALIASES.get(key, key)
            assert hasattr(SqlLoggedModel, key) and key not in ("tags", "params", "metrics"), key
        found.append((comparison.entity.type.value, key, comparison.op, comparison.value))
    return found


def ours(text: str) -> list[tuple[str, str, str, Any]]:
    return [(PREFIX[c.entity], c.key, c.op, c.value) for c in parse_logged_model_filter(text)]


VALID: list[tuple[str, list[Comparison]]] = [
    ("name='a'", [C("attribute", "name", "=", "a")]),  # what mlflow.set_active_model sends
    ("name = 'a' and tags.t = 'x'", [C("attribute", "name", "=", "a"), C("tag", "t", "=", "x")]),
    ("metrics.acc>0.5", [C("metric", "acc", ">", 0.5)]),
    ("metrics.acc >= -1 AND metrics.loss < .5", [C("metric", "acc", ">=", -1.0), C("metric", "loss", "<", 0.5)]),
    ("metrics.`my acc` != 1e3", [C("metric", "my acc", "!=", 1000.0)]),
    ("params.a.b = 'x'", [C("param", "a.b", "=", "x")]),
    ("params.lr LIKE '0.%'", [C("param", "lr", "LIKE", "0.%")]),
    ("tags.team ilike 'R%'", [C("tag", "team", "ILIKE", "R%")]),
    ("tags.team IN ('red', 'blue')", [C("tag", "team", "IN", ("red", "blue"))]),
    ("name NOT IN ('a')", [C("attribute", "name", "NOT IN", ("a",))]),
    ("attributes.model_type = 'clf'", [C("attribute", "model_type", "=", "clf")]),
    ("status = 1", [C("attribute", "status", "=", "1")]),
    (
        "source_run_id != 'r' AND model_id = 'm-1'",
        [C("attribute", "source_run_id", "!=", "r"), C("attribute", "model_id", "=", "m-1")],
    ),
    ("creation_time > 1000", [C("attribute", "creation_timestamp_ms", ">", 1000.0)]),
    ("last_updated_timestamp <= 5", [C("attribute", "last_updated_timestamp_ms", "<=", 5.0)]),
    ("creation_timestamp_ms = 7", [C("attribute", "creation_timestamp_ms", "=", 7.0)]),
    ("experiment_id IN ('1', '2')", [C("attribute", "experiment_id", "IN", ("1", "2"))]),
    ("AND name = 'a' AND", [C("attribute", "name", "=", "a")]),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[text for text, _ in VALID])
def test_valid_filters_mean_what_they_mean_to_mlflow(text: str, expected: list[Comparison]) -> None:
    assert parse_logged_model_filter(text) == expected
    assert ours(text) == mlflow_meaning(text)


@pytest.mark.parametrize("text", [None, ""])
def test_no_filter(text: str | None) -> None:
    assert parse_logged_model_filter(text) == [] == parse_filter_string(text)


# Where MLflow answers 500 (a Python error in its store) or reads something else than was meant.
REFUSED: list[tuple[str, str]] = [
    ("metrics.x > 'a'", "Expected a numeric value for metrics.x"),  # MLflow: 500 could not convert string to float
    ("foo = 'x'", "Invalid attribute key 'foo' specified"),  # MLflow: 500 no attribute 'foo'
    ("run_id = 'x'", "Invalid attribute key 'run_id' specified"),
    ("`params`.p = 'v'", "quote the key, not the entity"),  # MLflow: 500
    ("Metrics.x > 1", "Invalid entity type: 'Metrics'"),  # MLflow: 500 (no attribute 'Metrics.x')
    ("tag.t = 'v'", "Invalid entity type: 'tag'. Expected one of ['attributes', 'metrics', 'params', 'tags']."),
    ("name > 'a'", "Invalid comparison operator for attributes.name: '>'"),
    ("metrics.x IN ('1')", "Invalid comparison operator for metrics.x: 'IN'"),
    ("tags.t IS NULL", "Invalid comparison operator for tags.t: 'IS NULL'"),
    ("name = 'a' OR name = 'b'", "Expected a list of comparisons separated by 'AND'"),
    ("name = 'a' name = 'b'", "Expected a list of comparisons separated by 'AND'"),
    ("   ", "Expected a list of comparisons separated by 'AND'"),
    ("name = a", "Expected a quoted string value for attributes.name"),
    ("metrics.x >", "has no value"),
    ("name IN 'a'", "parenthesised list"),
    ("name = 'a\x00'", "NUL"),
]


@pytest.mark.parametrize(("text", "message"), REFUSED, ids=[text for text, _ in REFUSED])
def test_refused_filters(text: str, message: str) -> None:
    with pytest.raises(InvalidFilter) as refused:
        parse_logged_model_filter(text)
    assert message in str(refused.value)


def test_deliberate_differences_from_mlflows_parser() -> None:
    # Double quotes delimit a value here; MLflow keeps them in it, so `name = "a"` matched nothing.
    assert parse_logged_model_filter('name = "a"') == [C("attribute", "name", "=", "a")]
    assert mlflow_meaning('name = "a"') == [("attributes", "name", "=", '"a"')]
    # The time aliases work after `attributes.` too (MLflow: 500, no attribute 'creation_time').
    assert parse_logged_model_filter("attributes.creation_time > 1") == [
        C("attribute", "creation_timestamp_ms", ">", 1.0)
    ]


_CLAUSES = st.builds(
    "{}{}{}{}{}{}".format,
    st.sampled_from(["metrics.", "params.", "tags.", "attributes.", "tag.", "", "`tags`.", "Metrics."]),
    st.sampled_from(
        ["acc", "`a b`", "a.b", "name", "status", "creation_time", "model_id", "foo", "1a", "experiment_id"]
    ),
    st.sampled_from(["", " ", "\n"]),
    st.sampled_from(["=", "!=", ">", "<=", "LIKE", "ilike", "IN", "NOT IN", "IS NULL", "=="]),
    st.sampled_from(["", " ", "\t"]),
    st.sampled_from(["'v'", "'1'", "1", "-2.5", ".5", "1e3", "('a', 'b')", "('a',)", "()", "v", ""]),
)
_FILTERS = st.lists(_CLAUSES, min_size=1, max_size=3).map(" AND ".join)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_FILTERS)
def test_generated_filters_never_accept_more_than_mlflow(text: str) -> None:
    try:
        parsed = ours(text)
    except InvalidFilter:
        return
    try:
        expected = mlflow_meaning(text)
    except (MlflowException, ValueError, SyntaxError) as exc:
        raise AssertionError(f"accepted {text!r}, which MLflow refuses: {exc}") from None
    assert parsed == expected


# --- the page bound -------------------------------------------------------------------------------


def test_a_page_holds_at_most_max_logged_models(tmp_path: Path) -> None:
    """A larger max_results is served a page at a time, each with the token of the next (MLflow: unbounded)."""

    async def scenario() -> None:
        engine = create_engine(f"sqlite:///{tmp_path / 'models.db'}")
        await migrate(engine)
        store = TrackingStore(engine, "mlflow-artifacts:/")
        await store.ensure_default_experiment()
        count = MAX_LOGGED_MODELS + 5
        rows = [
            {
                "model_id": f"m-{n:05}",
                "experiment_id": 0,
                "name": f"n{n}",
                "artifact_location": f"mlflow-artifacts:/0/models/m-{n:05}/artifacts",
                "creation_timestamp": n,
                "last_updated_timestamp": n,
                "status": "LOGGED_MODEL_READY",
                "lifecycle_stage": "active",
            }
            for n in range(count)
        ]
        async with engine.begin() as conn:
            await conn.execute(insert(s.logged_models), rows)
            await conn.execute(
                insert(s.logged_model_tags), [{"model_id": r["model_id"], "key": "k", "value": r["name"]} for r in rows]
            )
        first, token = await store.search_logged_models(["0"], None, [], 5000, [], None)
        assert len(first) == MAX_LOGGED_MODELS and token
        assert [m["info"]["model_id"] for m in first] == [f"m-{n:05}" for n in range(count - 1, 4, -1)]
        assert all(m["info"]["tags"] == [{"key": "k", "value": m["info"]["name"]}] for m in first)
        rest, end = await store.search_logged_models(["0"], None, [], 5000, [], token)
        assert [m["info"]["model_id"] for m in rest] == [f"m-{n:05}" for n in range(4, -1, -1)] and end is None
        await engine.dispose()

    asyncio.run(scenario())
