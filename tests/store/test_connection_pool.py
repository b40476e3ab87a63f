"""The PostgreSQL pool pings only a connection that rested (gateway/store/database.py): no round trip
before each request, a connection PostgreSQL dropped meanwhile is replaced, and reads, readiness
checks and grouped writes (metrics, params, tags) that meet one dropped within the window run again
on a new one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import requests
from mlflow import MlflowClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store import database
from gateway.store.database import create_engine
from gateway.store.writes import GroupWriter, Reader
from tests.gateway_process import run_gateway
from tests.postgres_server import create_database


@pytest.fixture
def store_uri(postgres_dsn: str) -> str:
    return create_database(postgres_dsn, f"pool{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def engine(store_uri: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(store_uri)
    yield engine
    await engine.dispose()


@pytest.fixture
def pings(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Each ping the pool sends, as it happens."""
    sent: list[object] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        sent.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return sent


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def terminate(store_uri: str, pid: int) -> None:
    admin = await asyncpg.connect(store_uri)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        while await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
            await asyncio.sleep(0.01)
    finally:
        await admin.close()


async def test_a_connection_used_moments_ago_is_not_pinged(
    engine: AsyncEngine, pings: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await backend_pid(engine)
    for _ in range(20):
        assert await backend_pid(engine) == first  # the same pooled connection, no ping before it
    assert pings == []
    monkeypatch.setattr(database, "IDLE_BEFORE_PING", 0.05)
    await asyncio.sleep(0.1)
    assert await backend_pid(engine) == first
    assert len(pings) == 1  # it rested: pinged once, then used


async def test_a_connection_dropped_while_resting_is_replaced_before_use(
    engine: AsyncEngine, store_uri: str, pings: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "IDLE_BEFORE_PING", 0.05)
    dropped = await backend_pid(engine)
    await terminate(store_uri, dropped)
    await asyncio.sleep(0.1)
    assert await backend_pid(engine) != dropped  # the failed ping replaced it; the read itself succeeded
    assert len(pings) == 1


async def test_a_connection_dropped_within_the_window_fails_one_use_then_the_pool_recovers(
    engine: AsyncEngine, store_uri: str
) -> None:
    """The cost of skipping the ping, bounded: one statement fails, and SQLAlchemy replaces every older
    connection of the pool at their next checkout."""
    pids = set()
    connections = [await engine.connect() for _ in range(3)]
    for conn in connections:
        pids.add(int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()))
        await conn.close()
    for pid in pids:
        await terminate(store_uri, pid)
    with pytest.raises(DBAPIError) as failed:
        await backend_pid(engine)
    assert failed.value.connection_invalidated  # what makes the pool replace the older connections
    after = {await backend_pid(engine) for _ in range(5)}
    assert not after & pids


async def test_a_read_meets_a_dropped_connection_and_still_answers(engine: AsyncEngine, store_uri: str) -> None:
    """Reads (run search, metric history) may run twice: one that meets a connection dropped within the
    window runs again on a new one instead of failing."""
    reads = Reader(engine)

    def pid(conn: Any) -> int:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

    dropped = await reads.read(pid)
    await terminate(store_uri, dropped)
    assert await reads.read(pid) != dropped


async def test_a_write_meets_a_dropped_connection_and_is_stored_once(engine: AsyncEngine, store_uri: str) -> None:
    """A grouped write (a metric, param or tag) that meets a connection dropped within the window fails
    before its COMMIT is sent: it runs again on a new connection instead of failing, and is stored once;
    so do the writes of a group of several that all meet dropped connections."""
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE written (n integer)"))
    writes = GroupWriter(engine)

    def insert(n: int) -> Any:
        def write(conn: Any) -> int:
            conn.execute(text("INSERT INTO written VALUES (:n)"), {"n": n})
            return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

        return write

    try:
        first = await writes.write(insert(1))
        await terminate(store_uri, first)
        assert await writes.write(insert(2)) != first
        for pid in await gateway_backends(store_uri):
            await terminate(store_uri, pid)
        await asyncio.gather(*(writes.write(insert(n)) for n in range(3, 11)))
    finally:
        await writes.close()
    async with engine.connect() as conn:
        stored = sorted((await conn.execute(text("SELECT n FROM written"))).scalars())
    assert stored == list(range(1, 11))


async def gateway_backends(store_uri: str) -> list[int]:
    """The server processes of every other session on the gateway's database."""
    admin = await asyncpg.connect(store_uri)
    try:
        query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        return [row[0] for row in await admin.fetch(query)]
    finally:
        await admin.close()


def terminate_all(store_uri: str) -> None:
    for pid in asyncio.run(gateway_backends(store_uri)):
        asyncio.run(terminate(store_uri, pid))


def test_readiness_is_not_lost_to_a_connection_dropped_in_the_pool(store_uri: str, tmp_path: Path) -> None:
    """The probe's pooled connection was dropped moments after its last use (no ping then): the probe
    tries a new one instead of reporting the database down."""
    with run_gateway(tmp_path, "--backend-store-uri", store_uri) as gateway:
        for _ in range(3):
            assert requests.get(f"{gateway.url}/health/ready", timeout=30).status_code == 200
            terminate_all(store_uri)
            ready = requests.get(f"{gateway.url}/health/ready", timeout=30)
            assert (ready.status_code, ready.json()["database"]) == (200, "ok")
        assert not [line for line in gateway.log_lines() if line.get("msg") == "readiness check failed"]


def test_the_stock_client_goes_on_when_postgresql_drops_the_gateways_connections(
    store_uri: str, tmp_path: Path
) -> None:
    """PostgreSQL restarted or a proxy cut the connections: the gateway's next requests still succeed,
    a metric logged at once after the cut included (its first answer is 200, not a 500 the client would
    retry), and nothing is lost or stored twice."""

    with run_gateway(tmp_path, "--backend-store-uri", store_uri) as gateway:
        client = MlflowClient(gateway.url)
        run_id = client.create_run("0").info.run_id
        client.log_metric(run_id, "loss", 1.0, step=0)
        for dropped in range(2):  # once at once, once after the connections rested
            terminate_all(store_uri)
            if dropped:
                asyncio.run(asyncio.sleep(database.IDLE_BEFORE_PING + 0.2))
            point = {"run_id": run_id, "key": "loss", "value": float(dropped + 2), "timestamp": 5, "step": dropped + 1}
            answer = requests.post(f"{gateway.url}/api/2.0/mlflow/runs/log-metric", json=point, timeout=30)
            assert answer.status_code == 200, answer.text
            client.log_param(run_id, f"p{dropped}", "v")
        history = client.get_metric_history(run_id, "loss")
        assert sorted((m.step, m.value) for m in history) == [(0, 1.0), (1, 2.0), (2, 3.0)]
        assert client.get_run(run_id).data.params == {"p0": "v", "p1": "v"}
