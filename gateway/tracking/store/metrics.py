"""Metrics (and the batch that logs them with params and tags): points, latest values, history."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, case, func, select, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store import schema as s
from gateway.store.errors import InvalidValue
from gateway.store.pages import page_position, position_token
from gateway.store.sql import insert_for, plain_rows, upsert_statement
from gateway.tracking.limits import (
    MAX_BATCH_METRICS,
    MAX_BATCH_PARAMS,
    MAX_BATCH_TAGS,
    MAX_BATCH_TOTAL,
    MAX_PARAM_VALUE,
    MAX_RUN_NAME,
    MAX_TAG_VALUE,
)
from gateway.tracking.store.base import StoreBase, active_run, checked_model_id, found_model, found_run
from gateway.tracking.store.values import (
    RUN_NAME_TAG,
    MetricPoint,
    check_key,
    check_length,
    check_value,
    json_double,
    json_number,
    no_run,
)

METRIC_POINT = ("run_uuid", "key", "step", "timestamp", "value", "is_nan")
"""What makes a metric point itself: MLflow stores one row per these values."""

HISTORY_ORDER = ("step", "timestamp", "id")
"""A history's point order, and what its page token carries: the last point's values of these."""


def _check_batch_size(metrics: int, params: int, tags: int) -> None:
    for count, limit, what in (
        (params, MAX_BATCH_PARAMS, "params"),
        (metrics, MAX_BATCH_METRICS, "metrics"),
        (tags, MAX_BATCH_TAGS, "tags"),
        (metrics + params + tags, MAX_BATCH_TOTAL, "metrics, params, and tags"),
    ):
        if count > limit:
            raise InvalidValue(
                f"A batch logging request can contain at most {limit} {what}. Got {count} {what}. "
                "Please split up params across multiple requests and try again."
            )


class MetricStore(StoreBase):
    """Logging a batch of metrics, params and tags; reading metric histories."""

    async def log_batch(
        self,
        run_id: object,
        metrics: Sequence[MetricPoint],
        params: Sequence[dict[str, Any]],
        tags: Sequence[dict[str, Any]],
        *,
        batch: bool = True,
    ) -> None:
        """Log metrics (checked by the caller), params and tags to an active run, in one transaction.

        Checked in MLflow's order: every param and tag, then the batch's size, then repeated param
        keys, then the run. `batch` names fields as a log-batch request does (`params[0].key`); false
        for log-parameter and set-tag. A param or tag value over MLflow's limit is cut to it (with a
        warning in the log) when the store truncates long values, MLflow's default."""
        checked_params = []
        for index, param in enumerate(params):
            prefix = f"params[{index}]." if batch else ""
            key = check_key(param.get("key"), f"{prefix}key", label="Param key")
            value = check_value(
                param.get("value"), MAX_PARAM_VALUE, f"{prefix}value", label="Param value", truncate=self.truncate
            )
            checked_params.append((key, value))
        checked_tags = []
        for index, tag in enumerate(tags):
            prefix = f"tags[{index}]." if batch else ""
            key = check_key(tag.get("key"), f"{prefix}key")
            value = check_value(tag.get("value"), MAX_TAG_VALUE, f"{prefix}value", truncate=self.truncate)
            if key == RUN_NAME_TAG:  # it names the run, in a bounded column
                check_length(value, MAX_RUN_NAME, f"{prefix}value")
            checked_tags.append((key, value))
        _check_batch_size(len(metrics), len(params), len(tags))
        keys = [key for key, _ in checked_params]
        if repeated := sorted({key for key in keys if keys.count(key) > 1}):
            raise InvalidValue(
                f"Duplicate parameter keys have been submitted: {repeated}. Please ensure the request contains "
                "only one param value per param key."
            )
        if not isinstance(run_id, str) or not run_id:
            raise no_run(run_id)
        await self.writes.write(functools.partial(_write_batch, run_id, list(metrics), checked_params, checked_tags))

    async def metric_history(
        self, run_id: object, key: object, max_results: int, page_token: str | None
    ) -> tuple[str | None, str | None]:
        """A page of one metric's points as the JSON text of their array (None: no points), and the next
        page's token. Written as text in the read's thread: a history of thousands of points costs one
        string per point instead of a dict each and then the event loop's time encoding them."""
        after = page_position(page_token, HISTORY_ORDER)
        if not isinstance(run_id, str) or not run_id:
            raise no_run(run_id)
        return await self.reads.read(functools.partial(_history_page, run_id, key, max_results, after))

    async def metric_history_bulk(self, run_ids: list[str], key: object, max_results: int) -> list[dict[str, Any]]:
        """One metric's points for several runs, from one query over `metrics`, each with its `run_id`.

        Runs in id order (a repeated id repeats its points), each run's points by (timestamp, step, value),
        NaN ranked as its stored 0 as in MLflow's SQL store; at most `max_results` points in all. An
        unknown run has no points, as MLflow answers it.
        """
        ordered = sorted(run_ids)
        async with self.engine.connect() as conn:
            known = sorted(await conn.scalars(select(s.runs.c.run_uuid).where(s.runs.c.run_uuid.in_(ordered))))
            if not known:
                return []
            m = s.metrics.c
            # Python's id order, whatever the database's collation
            run_order = case({run_id: n for n, run_id in enumerate(known)}, value=m.run_uuid)
            query = (
                select(m.run_uuid, m.key, m.value, m.is_nan, m.timestamp, m.step)
                .where(m.run_uuid.in_(known), m.key == check_key(key, "metric_key"))
                .order_by(run_order, m.timestamp, m.step, m.value, m.is_nan, m.id)
                .limit(max_results)  # a repeated run needs no more rows: its points come twice
            )
            rows = (await conn.execute(query)).all()
        by_run: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in known}
        for row in rows:
            by_run[row.run_uuid].append(
                {
                    "key": row.key,
                    "value": json_number(math.nan if row.is_nan else row.value),
                    "timestamp": row.timestamp,
                    "step": row.step,
                    "run_id": row.run_uuid,
                }
            )
        found: list[dict[str, Any]] = []
        for run_id in ordered:
            if len(found) >= max_results:
                break
            found.extend(by_run.get(run_id, []))  # an unknown run has no points, as in MLflow
        return found[:max_results]

    async def metric_history_sampled(
        self, run_ids: list[str], key: str, max_results: int, steps: tuple[int, int] | None
    ) -> list[dict[str, Any]]:
        """Up to `max_results` points of one metric per run, evenly spread over its history (first
        and last kept; one point is the last), each with its `run_id`: MLflow's
        GetMetricHistoryBulkInterval, sampled in SQL as MLflow samples it, so a history of any length
        costs about `max_results` rows. Runs in the order given; an unknown run has no points."""
        found: list[dict[str, Any]] = []
        async with self.engine.connect() as conn:
            for run_id in run_ids:
                where = [s.metrics.c.run_uuid == run_id, s.metrics.c.key == key]
                if steps is not None:
                    where += [s.metrics.c.step >= steps[0], s.metrics.c.step <= steps[1]]
                found.extend(
                    {
                        "key": key,
                        "value": json_number(math.nan if row.is_nan else row.value),
                        "timestamp": row.timestamp,
                        "step": row.step,
                        "run_id": run_id,
                    }
                    for row in await _sampled_points(conn, where, max_results)
                )
        return found


async def _sampled_points(conn: AsyncConnection, where: list[Any], max_results: int) -> list[Any]:
    """The first point of each of `max_results` equal buckets of the ordered history, and its last point."""
    m = s.metrics.c
    bucketed = (
        select(
            m.value, m.timestamp, m.step, m.is_nan, func.ntile(max_results).over(order_by=_POINT_ORDER).label("bucket")
        )
        .where(*where)
        .subquery()
    )
    b = bucketed.c
    first_in_bucket = func.row_number().over(partition_by=b.bucket, order_by=[b.step, b.timestamp, b.value, b.is_nan])
    ranked = select(b.value, b.timestamp, b.step, b.is_nan, first_in_bucket.label("rn")).subquery()
    r = ranked.c
    query = (
        select(r.value, r.timestamp, r.step, r.is_nan).where(r.rn == 1).order_by(r.step, r.timestamp, r.value, r.is_nan)
    )
    rows = list((await conn.execute(query)).all())
    newest = select(m.value, m.timestamp, m.step, m.is_nan).where(*where)
    last = (await conn.execute(newest.order_by(*(column.desc() for column in _POINT_ORDER)).limit(1))).first()
    if last is not None and (not rows or tuple(rows[-1]) != tuple(last)):
        if len(rows) >= max_results:
            rows[-1] = last
        else:
            rows.append(last)
    return rows


_POINT_ORDER = (s.metrics.c.step, s.metrics.c.timestamp, s.metrics.c.value, s.metrics.c.is_nan)


def _history_page(
    run_id: str, key: object, max_results: int, after: tuple[int, ...] | None, conn: Connection
) -> tuple[str | None, str | None]:
    """A page of one metric's points, in step and time order (the run looked up before the key is checked),
    as the JSON text of their array: each point `{"key", "value", "timestamp", "step"}` in protobuf's
    field order, as `json.dumps` of the point's dict writes it. The page starts after the point whose
    (step, timestamp, id) is `after`, and its token carries its last point's."""
    sql = _statements(conn.dialect.name)
    found_run(conn.execute(sql.run, {"run_id": run_id}).first(), run_id)
    m = s.metrics.c
    order = [m[column] for column in HISTORY_ORDER]
    query = select(m.value, m.is_nan, *order).where(m.run_uuid == run_id, m.key == check_key(key, "metric_key"))
    if after is not None:
        query = query.where(tuple_(*order) > tuple_(*after))
    rows = plain_rows(conn, query.order_by(*order).limit(max_results + 1))
    token = None
    if len(rows) > max_results:
        token = position_token(tuple(rows[max_results - 1][2:]))
    if not rows:
        return None, token
    head = '{"key": ' + json.dumps(key) + ', "value": '
    finite = math.isfinite
    points = [
        f'{head}{value!r}, "timestamp": {timestamp}, "step": {step}}}'
        if not nan and finite(value)
        else f'{head}{json_double(math.nan if nan else value)}, "timestamp": {timestamp}, "step": {step}}}'
        for value, nan, step, timestamp, _ in rows[:max_results]  # after value and is_nan, HISTORY_ORDER's
    ]
    return "[" + ", ".join(points) + "]", token


@dataclass(frozen=True)
class _Statements:
    """The batch's statements for one dialect, built once: only their values change from call to call."""

    run: Any
    param: Any
    param_value: Any
    tag: Any
    run_name: Any
    model: Any
    model_metric: Any
    latest: Any


@functools.cache
def _statements(dialect: str) -> _Statements:
    latest = s.latest_metrics.c
    return _Statements(
        run=select(s.runs.c.run_uuid, s.runs.c.experiment_id, s.runs.c.lifecycle_stage).where(
            s.runs.c.run_uuid == bindparam("run_id")
        ),
        param=insert_for(dialect, s.params).on_conflict_do_nothing(index_elements=["run_uuid", "key"]),
        param_value=select(s.params.c.value).where(
            s.params.c.run_uuid == bindparam("run_id"), s.params.c.key == bindparam("param_key")
        ),
        tag=upsert_statement(dialect, s.tags, ["run_uuid", "key"], ["value"]),
        run_name=update(s.runs).where(s.runs.c.run_uuid == bindparam("run_id")).values(name=bindparam("run_name")),
        model=select(s.logged_models.c.model_id, s.logged_models.c.lifecycle_stage).where(
            s.logged_models.c.model_id == bindparam("model_id")
        ),
        model_metric=insert_for(dialect, s.logged_model_metrics).on_conflict_do_nothing(),
        # One statement, so two writers of the same run and key (two replicas, two workers) neither
        # collide on the first insert nor overwrite a later point with an earlier one.
        latest=upsert_statement(
            dialect,
            s.latest_metrics,
            ["run_uuid", "key"],
            ["value", "is_nan", "timestamp", "step"],
            only_if=lambda new: (
                tuple_(new.step, new.timestamp, new.value) >= tuple_(latest.step, latest.timestamp, latest.value)
            ),
        ),
    )


def _write_batch(
    run_id: str,
    metrics: list[MetricPoint],
    params: list[tuple[str, str]],
    tags: list[tuple[str, str]],
    conn: Connection,
) -> None:
    """Log checked metrics, params and tags to an active run: one request's part of a group's transaction."""
    sql = _statements(conn.dialect.name)
    if metrics and not params and not tags and conn.dialect.name == "postgresql":
        _insert_metrics(conn, sql, None, run_id, metrics)  # the run checked by the points' statement itself
        return
    run = active_run(found_run(conn.execute(sql.run, {"run_id": run_id}).first(), run_id))
    for key, value in params:
        # Insert unless the key is there (a concurrent writer's insert is waited for, not
        # collided with), then compare with what is there: logging the same value again is fine.
        if conn.execute(sql.param, {"run_uuid": run_id, "key": key, "value": value}).rowcount == 1:
            continue
        existing = conn.scalar(sql.param_value, {"run_id": run_id, "param_key": key})
        if existing != value:
            raise InvalidValue(
                f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                f"value='{existing}' for run ID='{run_id}'. Attempted logging new value '{value}'."
            )
    if tags:
        conn.execute(sql.tag, [{"run_uuid": run_id, "key": key, "value": value} for key, value in tags])
    for key, value in tags:
        if key == RUN_NAME_TAG:
            conn.execute(sql.run_name, {"run_id": run_id, "run_name": value})
    if metrics:
        _insert_metrics(conn, sql, run, run_id, metrics)


def _stored_columns(point: MetricPoint) -> tuple[float, bool, int, int]:
    """A point's stored value, is_nan, timestamp and step: NaN is kept as 0 with its flag, as MLflow's SQL
    store keeps it."""
    nan = math.isnan(point.value)
    return 0.0 if nan else point.value, nan, point.timestamp, point.step


def _stored(point: MetricPoint) -> dict[str, Any]:
    return dict(zip(("value", "is_nan", "timestamp", "step"), _stored_columns(point), strict=True))


_METRIC_COLUMNS = (
    "run_uuid", "key", "value", "is_nan", "timestamp", "step", "model_id", "dataset_name", "dataset_digest"
)  # fmt: skip
"""A metrics row's columns in the table's order: the order of the SQLite insert's `?` placeholders."""


_LINKS = ("model_id", "dataset_name", "dataset_digest")
"""A point's optional links to a logged model and a dataset: the last three of `_METRIC_COLUMNS`."""


SQLITE_CHUNKS = (MAX_BATCH_METRICS, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1)
"""Points per SQLite insert statement: a batch goes in the fewest of these (a full batch in one; 600
points as 512 + 64 + 16 + 8), so at most eleven statement texts are prepared and kept by the driver's
statement cache, whatever sizes clients send (a prepared 1,000-point statement holds about 0.5 MB).
1,000 points of eight values is 8,001 variables, under SQLite's 32,766 (the registry's RETURNING
needs SQLite 3.35 already, and 3.32 raised the limit from 999)."""


@functools.cache
def _sqlite_metric_insert(links: bool, points: int) -> str:
    """The insert of `points` metric points as one SQLite statement: the run's id bound once, then each
    point's values (`_sqlite_values`) in a VALUES list; unless some point `links` to a model or dataset,
    those three columns are NULL in the text.

    One statement instead of the driver's executemany, which binds and steps each row on its own and
    gives up the GIL around every step: the server's CPU per 1,000-point batch 7.35 -> 6.05 ms and its
    log-batch capacity 30% higher (`benchmarks/log_batch_capacity.py`, idle machine). SQLite
    fills VALUES rows in their order, so ids still follow the request's order."""
    given = _METRIC_COLUMNS[1:] if links else _METRIC_COLUMNS[1 : -len(_LINKS)]
    row = "(" + ", ".join("?" * len(given)) + ")"
    selected = [f"column{n}" for n in range(1, len(given) + 1)] + ([] if links else ["NULL"] * len(_LINKS))
    return (  # fixed names only; WHERE true: SQLite's grammar for an upsert from a SELECT
        f"INSERT INTO metrics ({', '.join(map(_quoted, _METRIC_COLUMNS))}) "  # noqa: S608
        f"SELECT ?, {', '.join(selected)} FROM (VALUES {', '.join([row] * points)}) "
        f"WHERE true ON CONFLICT ({', '.join(map(_quoted, METRIC_POINT))}) DO NOTHING"
    )


def _quoted(column: str) -> str:
    return f'"{column}"'


def _sqlite_values(points: Sequence[MetricPoint], links: bool) -> list[Any]:
    """The points' values for `_sqlite_metric_insert(links, len(points))` after the run's id, one after the
    other; is_nan as the integer SQLite stores (a bool costs the driver an adapter lookup)."""
    values: list[Any] = []
    for point in points:
        value, nan, timestamp, step = _stored_columns(point)
        values += (point.key, value, int(nan), timestamp, step)
        if links:
            values += (point.model_id, point.dataset_name, point.dataset_digest)
    return values


def _sqlite_insert_points(conn: Connection, run_id: str, points: Sequence[MetricPoint]) -> None:
    """Store the points not stored yet, in `SQLITE_CHUNKS` statements."""
    links = any((p.model_id, p.dataset_name, p.dataset_digest) != (None, None, None) for p in points)
    start = 0
    while start < len(points):
        size = next(size for size in SQLITE_CHUNKS if size <= len(points) - start)
        chunk = points[start : start + size]
        conn.exec_driver_sql(_sqlite_metric_insert(links, size), (run_id, *_sqlite_values(chunk, links)))
        start += size


def _insert_metrics(conn: Connection, sql: _Statements, run: Any, run_id: str, points: Sequence[MetricPoint]) -> None:
    """Store each point once (logging it again changes nothing, as in MLflow), link to their logged
    models the points that name one, and move each key's latest value forward. The `run`'s row, or
    None on PostgreSQL to have it looked up and checked in the same statement."""
    latest = _latest_points(points)
    if conn.dialect.name == "sqlite":
        _sqlite_insert_points(conn, run_id, points)
    else:
        rows = [(run_id, p.key, *_stored_columns(p), p.model_id, p.dataset_name, p.dataset_digest) for p in points]
        found = _postgres_insert_points(conn, run_id, rows, latest)
        run = run if run is not None else active_run(found_run(found, run_id))
    linked = [p for p in points if p.model_id]
    for model_id in sorted({p.model_id for p in linked if p.model_id}):
        row = conn.execute(sql.model, {"model_id": model_id}).first() if checked_model_id(model_id) else None
        found_model(row, model_id)
    if linked:
        conn.execute(
            sql.model_metric,
            [
                {
                    "model_id": p.model_id,
                    "key": p.key,
                    "run_uuid": run_id,
                    **_stored(p),
                    "experiment_id": run.experiment_id,
                    "dataset_name": p.dataset_name,
                    "dataset_digest": p.dataset_digest,
                }
                for p in linked
            ],
        )
    if conn.dialect.name == "sqlite":
        conn.execute(sql.latest, [{"run_uuid": run_id, "key": key, **_stored(point)} for key, point in latest.items()])


def _latest_points(points: Sequence[MetricPoint]) -> dict[str, MetricPoint]:
    """Each key's latest point of a batch, as MLflow ranks them: the highest step, then timestamp, then value."""
    latest: dict[str, MetricPoint] = {}
    for point in points:
        current = latest.get(point.key)
        if current is None or (point.step, point.timestamp, point.value) >= (
            current.step,
            current.timestamp,
            current.value,
        ):
            latest[point.key] = point
    return latest


_POSTGRES_POINTS = """
WITH run AS (
    SELECT run_uuid, experiment_id, lifecycle_stage FROM runs WHERE run_uuid = $1::varchar FOR KEY SHARE
), points AS (
    INSERT INTO metrics (run_uuid, key, value, is_nan, "timestamp", step, model_id, dataset_name, dataset_digest)
    SELECT $1::varchar, * FROM unnest($2::text::varchar[], $3::text::float8[], $4::text::bool[],
                                      $5::text::int8[], $6::text::int8[], $7::text::varchar[],
                                      $8::text::varchar[], $9::text::varchar[])
    WHERE EXISTS (SELECT FROM run WHERE lifecycle_stage = 'active')
    ON CONFLICT (run_uuid, key, step, timestamp, value, is_nan) DO NOTHING
), latest_values AS (
    INSERT INTO latest_metrics AS latest (run_uuid, key, value, is_nan, "timestamp", step)
    SELECT $1::varchar, * FROM unnest($10::text::varchar[], $11::text::float8[], $12::text::bool[],
                                      $13::text::int8[], $14::text::int8[])
    WHERE EXISTS (SELECT FROM run WHERE lifecycle_stage = 'active')
    ON CONFLICT (run_uuid, key) DO UPDATE
    SET value = excluded.value, is_nan = excluded.is_nan, "timestamp" = excluded."timestamp", step = excluded.step
    WHERE (excluded.step, excluded."timestamp", excluded.value) >= (latest.step, latest."timestamp", latest.value)
)
SELECT run_uuid, experiment_id, lifecycle_stage FROM run
"""
"""A batch's points and each key's latest value on PostgreSQL in one statement of one round trip, which
also answers the run's row (none: no such run) and stores nothing unless the run is active. The run's
row is locked once (FOR KEY SHARE: `gc` waits to delete it until the points are committed, and
deletes them too); there is no foreign key from `metrics` on PostgreSQL, whose trigger took that lock
once per point (migration 0012). The columns as arrays, so 1,000 points cost one execution instead
of one each, and a `log_metric` one round trip instead of three; each array in PostgreSQL's text form
(`_POINT_ARRAYS`), which PostgreSQL parses in C, where asyncpg checked every element of a list
parameter against `collections.abc` (9,000 checks for 1,000 points). Repeated points are stored once
(ON CONFLICT DO NOTHING skips a row that repeats one of the same statement too); the latest value
moves forward only, as the upsert of `_statements` moves it."""


def _numbers_text(values: Sequence[float | int]) -> str:
    """PostgreSQL's text form of a number array: `repr` of a float reads back as the same double (`inf`
    included; a NaN is stored as 0 with its flag)."""
    return "{" + ",".join(map(repr, values)) + "}"


_BOOLEAN_TEXT = {False: "f", True: "t"}


def _booleans_text(values: Sequence[bool]) -> str:
    return "{" + ",".join(map(_BOOLEAN_TEXT.__getitem__, values)) + "}"


def _strings_text(values: Sequence[str | None]) -> str:
    """PostgreSQL's text form of a string array: each value double-quoted with a backslash before `"`
    and `\\`, None as NULL; `{}` when all are None (unnest pads a shorter array with NULLs)."""
    if values.count(None) == len(values):
        return "{}"
    quoted = {
        value: "NULL" if value is None else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        for value in set(values)
    }
    return "{" + ",".join(map(quoted.__getitem__, values)) + "}"


_POINT_ARRAYS: tuple[Callable[[Any], str], ...] = (
    _strings_text, _numbers_text, _booleans_text, _numbers_text, _numbers_text, _strings_text, _strings_text,
    _strings_text, _strings_text, _numbers_text, _booleans_text, _numbers_text, _numbers_text,
)  # fmt: skip
"""How `_POSTGRES_POINTS`' parameters $2 to $14 are written: the points' columns after run_uuid, then
the latest values' key, value, is_nan, timestamp and step."""


def _postgres_insert_points(
    conn: Connection, run_id: str, rows: list[tuple[Any, ...]], latest: dict[str, MetricPoint]
) -> Any:
    """Insert the points' `rows` (in `_METRIC_COLUMNS` order) and move the `latest` values forward if the
    run is active; the run's row (None: no such run)."""
    columns = list(zip(*rows, strict=True))[1:]
    stored = list(zip(*[(key, *_stored_columns(point)) for key, point in latest.items()], strict=True))
    arrays = [write(column) for write, column in zip(_POINT_ARRAYS, [*columns, *stored], strict=True)]
    return conn.exec_driver_sql(_POSTGRES_POINTS, (run_id, *arrays)).first()
