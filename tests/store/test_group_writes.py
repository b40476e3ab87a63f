"""Group commit of the tracking writes (gateway/store/writes.py), on SQLite and PostgreSQL.

Concurrent metric, param and tag writes share one transaction (written again with a SAVEPOINT each when
one of them fails); each is answered only once that transaction has committed, a write that fails is
rolled back alone, and an acknowledged write survives the gateway being killed.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store import schema as s
from gateway.store.database import create_engine, migrate
from gateway.store.errors import InvalidValue
from gateway.tracking.store import MetricPoint, TrackingStore
from tests.gateway_process import RunningGateway, run_gateway
from tests.postgres_server import create_database

CLIENTS = 16


def database_uri(request: pytest.FixtureRequest, workdir: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{workdir / 'mlruns.db'}"
    return create_database(request.getfixturevalue("postgres_dsn"), f"gw{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_uri(request, tmp_path)


@pytest.fixture
async def store(backend_uri: str) -> AsyncIterator[TrackingStore]:
    engine = create_engine(backend_uri)
    await migrate(engine)
    tracking = TrackingStore(engine, "mlflow-artifacts:/")
    await tracking.ensure_default_experiment()
    yield tracking
    await tracking.close()
    await engine.dispose()


async def new_run(store: TrackingStore) -> str:
    experiment = await store.create_experiment(f"e-{uuid.uuid4().hex[:8]}", None, [])
    run: dict[str, Any] = await store.create_run(experiment, "", 1, None, [])
    return str(run["info"]["run_id"])


async def stored_points(engine: AsyncEngine, run_id: str) -> list[tuple[str, int, float]]:
    """The run's metric points as another connection sees them (committed ones only)."""
    m = s.metrics.c
    async with engine.connect() as conn:
        rows = await conn.execute(select(m.key, m.step, m.value).where(m.run_uuid == run_id).order_by(m.key, m.step))
        return [(row.key, row.step, row.value) for row in rows]


def point(key: str, step: int) -> MetricPoint:
    return MetricPoint(key=key, value=step / 10, timestamp=1_000 + step, step=step)


async def test_concurrent_writes_share_one_transaction_and_are_answered_after_its_commit(
    store: TrackingStore,
) -> None:
    run_id = await new_run(store)
    seen_at_answer: dict[int, list[tuple[str, int, float]]] = {}

    async def client(n: int) -> None:
        await store.log_batch(run_id, [point(f"m{n}", n)], [{"key": f"p{n}", "value": str(n)}], [])
        # Answered: another connection must already see the point (it is committed, not just written).
        seen_at_answer[n] = await stored_points(store.engine, run_id)

    groups = store.writes.groups
    await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    assert store.writes.groups == groups + 1  # the 16 writes queued together went in one transaction
    for n, seen in seen_at_answer.items():
        assert (f"m{n}", n, n / 10) in seen
    assert len(await stored_points(store.engine, run_id)) == CLIENTS


async def test_a_failed_write_is_rolled_back_alone_and_the_others_of_its_group_commit(store: TrackingStore) -> None:
    run_id = await new_run(store)
    await store.log_batch(run_id, [], [{"key": "lr", "value": "0.1"}], [])
    bad = 5

    async def client(n: int) -> None:
        params = [{"key": "lr", "value": "0.2" if n == bad else "0.1"}]  # changing a param is refused
        await store.log_batch(run_id, [point(f"m{n}", n)], params, [{"key": f"t{n}", "value": "x"}])

    groups = store.writes.groups
    results = await asyncio.gather(*(client(n) for n in range(CLIENTS)), return_exceptions=True)
    assert store.writes.groups == groups + 1
    assert isinstance(results[bad], InvalidValue)
    assert "Changing param values is not allowed" in str(results[bad])
    assert [r for n, r in enumerate(results) if n != bad] == [None] * (CLIENTS - 1)
    stored = await stored_points(store.engine, run_id)
    assert [key for key, _, _ in stored] == sorted(f"m{n}" for n in range(CLIENTS) if n != bad)  # none of #5's
    run = await store.get_run(run_id)
    tags = {tag["key"] for tag in run["data"]["tags"]}
    assert f"t{bad}" not in tags
    assert {f"t{n}" for n in range(CLIENTS) if n != bad} <= tags


async def test_a_write_to_an_unknown_run_fails_alone(store: TrackingStore) -> None:
    run_id = await new_run(store)
    results = await asyncio.gather(
        store.log_batch(run_id, [point("a", 1)], [], []),
        store.log_batch("f" * 32, [point("a", 2)], [], []),
        store.log_batch(run_id, [point("a", 3)], [], []),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert "Run with id=ffffffffffffffffffffffffffffffff not found" in str(results[1])
    assert await stored_points(store.engine, run_id) == [("a", 1, 0.1), ("a", 3, 0.3)]


async def test_a_group_of_one_that_fails_stores_nothing(store: TrackingStore) -> None:
    run_id = await new_run(store)
    with pytest.raises(InvalidValue):
        await store.log_batch(run_id, [point("a", 1)], [{"key": "p", "value": "1"}, {"key": "p", "value": "1"}], [])
    await store.log_batch(run_id, [point("a", 1)], [{"key": "p", "value": "1"}], [])
    with pytest.raises(InvalidValue, match="Changing param values"):
        await store.log_batch(run_id, [point("b", 2)], [{"key": "p", "value": "2"}], [])
    assert await stored_points(store.engine, run_id) == [("a", 1, 0.1)]


# --- through the stock client and a real gateway -----------------------------------------------


def kill(gateway: RunningGateway) -> None:
    os.killpg(gateway.proc.pid, signal.SIGKILL)
    gateway.proc.wait(10)


def log_from_threads(url: str, run_id: str, calls: int, errors: list[BaseException]) -> None:
    def work(n: int) -> None:
        client = MlflowClient(url)
        try:
            for step in range(calls):
                client.log_metric(run_id, "shared", float(n * calls + step), timestamp=1, step=n * calls + step)
                client.log_metric(run_id, f"own-{n}", float(step), timestamp=1, step=step)
            if n == 3:  # a refused write among the others: a param changed
                try:
                    client.log_param(run_id, "fixed", "other")
                except MlflowException as exc:
                    assert "Changing param values is not allowed" in str(exc)
                else:
                    raise AssertionError("changing a param was accepted")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_sixteen_clients_lose_and_duplicate_no_point_and_acknowledged_points_survive_a_kill(
    tmp_path: Path, backend_uri: str
) -> None:
    calls = 25
    with run_gateway(tmp_path, "--backend-store-uri", backend_uri) as gateway:
        client = MlflowClient(gateway.url)
        run_id = client.create_run(client.create_experiment("concurrent")).info.run_id
        client.log_param(run_id, "fixed", "1")
        errors: list[BaseException] = []
        log_from_threads(gateway.url, run_id, calls, errors)
        assert errors == []
        kill(gateway)  # every point above was acknowledged: none may be lost with the process
    with run_gateway(tmp_path, "--backend-store-uri", backend_uri) as gateway:
        client = MlflowClient(gateway.url)
        shared = client.get_metric_history(run_id, "shared")
        assert sorted(m.step for m in shared) == list(range(CLIENTS * calls))  # each point once
        for n in range(CLIENTS):
            own = client.get_metric_history(run_id, f"own-{n}")
            assert sorted(m.step for m in own) == list(range(calls))
        run = client.get_run(run_id)
        assert run.data.metrics["shared"] == CLIENTS * calls - 1  # the latest value: the highest step
        assert run.data.params == {"fixed": "1"}


async def test_a_write_raising_stop_iteration_fails_alone_and_the_writer_goes_on(store: TrackingStore) -> None:
    """A future refuses StopIteration: delivered as it is, it ended the writer's lane and every later
    write waited forever. Its caller gets a RuntimeError instead, and the next write is stored."""

    def stops(_: Any) -> None:
        raise StopIteration("no chunk size fits")

    with pytest.raises(RuntimeError, match="StopIteration"):
        await asyncio.wait_for(store.writes.write(stops), 10)
    run_id = await new_run(store)
    await asyncio.wait_for(store.log_batch(run_id, [MetricPoint("after", 1.0, 1, 1)], [], []), 10)
    assert (await store.get_run(run_id))["data"]["metrics"][0]["key"] == "after"


@pytest.mark.parametrize("sent", [1, 7, 513, 999, 1000])
async def test_a_batch_of_any_size_is_stored_whole_once_and_in_its_order(store: TrackingStore, sent: int) -> None:
    """On SQLite a batch goes in as statements of 1,000, 512, 256, ... 1 points (`SQLITE_CHUNKS`; 999
    points are eight of them): every point comes out once, ids in the request's order (steps running
    backwards, so no other order matches it), and the batch's first point sent again as its last is
    stored once, in the same statement (1,000) or a later one."""
    run_id = await new_run(store)
    count = max(1, sent - 1)
    points = [MetricPoint(key=f"k{i % 3}", value=i / 2, timestamp=1000 + i, step=count - i) for i in range(count)]
    await store.log_batch(run_id, [*points, points[0]] if sent > 1 else points, [], [])
    m = s.metrics.c
    async with store.engine.connect() as conn:
        query = select(m.key, m.value, m.timestamp, m.step).where(m.run_uuid == run_id).order_by(m.id)
        rows = (await conn.execute(query)).all()
    assert [tuple(row) for row in rows] == [(p.key, p.value, p.timestamp, p.step) for p in points]
    latest = await store.get_run(run_id)
    assert {m["key"]: m["step"] for m in latest["data"]["metrics"]} == {
        key: max(p.step for p in points if p.key == key) for key in {p.key for p in points}
    }


@pytest.mark.parametrize("linked", [True, False], ids=["some-points-name-a-dataset", "none-does"])
async def test_every_value_of_a_batch_is_stored_exactly(store: TrackingStore, linked: bool) -> None:
    """What a point can hold comes back from the table as it went in: on PostgreSQL the batch's columns
    travel as PostgreSQL's array text (numbers written by `repr`, strings quoted), so quotes,
    backslashes, commas, braces, the word NULL, non-ASCII text, infinities, the smallest double, a
    NaN and the 64-bit limits are each checked. On SQLite a batch whose points name no dataset or model
    is inserted by a statement with those columns NULL in its text, the others with them bound."""
    run_id = await new_run(store)
    names = ['a "quoted", {braced} \\ name', "NULL", "", "étoile ✓", "x" * 500]
    values = [math.inf, -math.inf, 5e-324, -0.0, 1 / 3, 1e308, 7, math.nan]
    points = [
        MetricPoint(
            key=f"k {i % 3}:/.-_",
            value=value,
            timestamp=(0, 2**63 - 1)[i % 2],
            step=(-(2**63), 2**63 - 1, i)[i % 3],
            dataset_name=names[i % len(names)] if linked and i % 4 else None,
            dataset_digest=f'd"{i}\\' if linked and i % 4 else None,
        )
        for i, value in enumerate(values)
    ]
    await store.log_batch(run_id, points, [], [])
    m = s.metrics.c
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(m.key, m.value, m.is_nan, m.timestamp, m.step, m.model_id, m.dataset_name, m.dataset_digest)
                .where(m.run_uuid == run_id)
                .order_by(m.id)
            )
        ).all()
    expected = [
        (p.key, 0.0 if math.isnan(p.value) else p.value, math.isnan(p.value), p.timestamp, p.step, None,
         p.dataset_name, p.dataset_digest)
        for p in points
    ]  # fmt: skip
    assert [tuple(row) for row in rows] == expected
