"""Runs: create, read, update, delete and restore, tags, and run search."""

from __future__ import annotations

import collections
import functools
import json
import operator
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    String,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    literal_column,
    not_,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from gateway.store import schema as s
from gateway.store.errors import InvalidValue
from gateway.store.pages import offset_token, page_offset
from gateway.store.sql import compare, driver_rows, sqlite_text, upsert
from gateway.tracking.limits import MAX_RUN_NAME, MAX_SEARCH_RESULTS, MAX_TAG_VALUE, MAX_USER_ID, RUN_STATUSES
from gateway.tracking.search_filter import Comparison, InvalidFilter, OrderBy, parse_filter, parse_order_by
from gateway.tracking.store.base import StoreBase
from gateway.tracking.store.run_text import run_info_text, run_text
from gateway.tracking.store.sql import IN_BATCH, lifecycle
from gateway.tracking.store.values import (
    ACTIVE,
    DELETED,
    RUN_NAME_TAG,
    check_key,
    check_length,
    check_value,
    default_run_name,
    int_field,
    missing,
    not_found,
    now_ms,
    possible_experiment_id,
    wrong_type,
)

PARENT_RUN_TAG = "mlflow.parentRunId"
"""The tag MLflow's client sets on a nested run (autolog's grid-search children): its parent's run id."""
PAGE_BYTES = 16 << 20
"""About how much run data one page of a run search holds; the client follows next_page_token."""
RUNS_PER_CHUNK = IN_BATCH // 5
"""Runs whose children a search reads first; the next chunks are sized by `next_chunk`, and the page's
size is checked between chunks."""


class RunStore(StoreBase):
    """Runs and run search."""

    async def create_run(
        self, experiment_id: object, user_id: object, start_time: object, run_name: object, tags: list[dict[str, Any]]
    ) -> dict[str, Any]:
        if experiment_id is None or experiment_id == "":
            raise missing("experiment_id")  # MLflow: a foreign-key error from the database, also a 400
        run_id = uuid.uuid4().hex
        tag_values = {
            check_key(t.get("key")): check_value(t.get("value"), MAX_TAG_VALUE, "value", truncate=self.truncate)
            for t in tags
        }
        tagged = tag_values.get(RUN_NAME_TAG)
        if isinstance(run_name, str) and run_name and tagged is not None and tagged != run_name:
            raise InvalidValue(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values "
                f"(run_name='{run_name}', mlflow.runName='{tagged}')."
            )
        name = check_length(
            run_name if isinstance(run_name, str) and run_name else tagged or default_run_name(),
            MAX_RUN_NAME,
            "run_name",
        )
        if user_id is not None and not isinstance(user_id, str):
            raise wrong_type(user_id, "user_id")
        user = check_length(user_id or "", MAX_USER_ID, "user_id")
        tag_values[RUN_NAME_TAG] = name
        async with self.engine.begin() as conn:
            experiment = await self._active_experiment(conn, experiment_id)
            await conn.execute(
                insert(s.runs).values(
                    run_uuid=run_id,
                    experiment_id=experiment.experiment_id,
                    name=name,
                    user_id=user,
                    status="RUNNING",
                    start_time=int_field(start_time, "start_time", default=0),  # as MLflow
                    end_time=None,
                    lifecycle_stage=ACTIVE,
                    artifact_uri=f"{experiment.artifact_location.rstrip('/')}/{run_id}/artifacts",
                )
            )
            for key, value in tag_values.items():
                await conn.execute(insert(s.tags).values(run_uuid=run_id, key=key, value=value))
            created = await self._run_json(conn, await self._run_row(conn, run_id))
            del created["outputs"]  # a new run has none, and MLflow's create answer leaves the field out
            return created

    @staticmethod
    def _run_info(row: Any) -> dict[str, Any]:
        info: dict[str, Any] = json.loads(run_info_text(row))
        return info

    async def _run_json(self, conn: AsyncConnection, row: Any) -> dict[str, Any]:
        return (await conn.run_sync(runs_json, [row]))[0]

    async def get_run(self, run_id: object) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            return await self._run_json(conn, await self._run_row(conn, run_id))

    async def update_run(self, run_id: object, status: object, end_time: object, run_name: object) -> dict[str, Any]:
        async with self.engine.begin() as conn:
            row = await self._active_run(conn, run_id)
            values: dict[str, Any] = {}
            if status not in (None, ""):
                if status not in RUN_STATUSES:
                    raise InvalidValue(f"Invalid value {status!r} for parameter 'status'")
                values["status"] = status
            if end_time not in (None, ""):
                values["end_time"] = int_field(end_time, "end_time")
            if isinstance(run_name, str) and run_name:
                values["name"] = check_length(run_name, MAX_RUN_NAME, "run_name")
                await upsert(conn, s.tags, {"run_uuid": row.run_uuid, "key": RUN_NAME_TAG}, {"value": run_name})
            if values:
                await conn.execute(update(s.runs).where(s.runs.c.run_uuid == row.run_uuid).values(**values))
            return self._run_info(await self._run_row(conn, row.run_uuid))

    async def set_run_lifecycle(self, run_id: object, stage: str) -> None:
        async with self.engine.begin() as conn:
            row = await self._run_row(conn, run_id)
            await conn.execute(
                update(s.runs)
                .where(s.runs.c.run_uuid == row.run_uuid)
                .values(lifecycle_stage=stage, deleted_time=now_ms() if stage == DELETED else None)
            )

    async def delete_tag(self, run_id: object, key: object) -> None:
        async with self.engine.begin() as conn:
            row = await self._active_run(conn, run_id)
            result = await conn.execute(
                delete(s.tags).where(s.tags.c.run_uuid == row.run_uuid, s.tags.c.key == check_key(key))
            )
            if result.rowcount == 0:
                raise not_found(f"No tag with name: {key} in run with id {row.run_uuid}")

    async def search_runs(
        self,
        experiment_ids: list[object],
        filter_string: str | None,
        view_type: str | None,
        max_results: int,
        order_by: list[str] | None,
        page_token: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the runs matching `filter_string`, in the order of `order_by`, and the next page's token."""
        found, token = await self.search_runs_text(
            experiment_ids, filter_string, view_type, max_results, order_by, page_token
        )
        return [json.loads(run) for run in found], token

    async def search_runs_text(
        self,
        experiment_ids: list[object],
        filter_string: str | None,
        view_type: str | None,
        max_results: int,
        order_by: list[str] | None,
        page_token: str | None,
    ) -> tuple[list[str], str | None]:
        """`search_runs` with each run as its JSON text (written in the reader's thread)."""
        if not 1 <= max_results <= MAX_SEARCH_RESULTS:
            # MLflow's words (its tests read them), though the value's type is right: the range is what is wrong.
            raise InvalidValue(
                f"Invalid value {max_results} for parameter 'max_results' supplied:  Hint: Value was of type "
                "'int'. See the API docs for more information about request parameters."
            )
        arguments = (tuple(experiment_ids), filter_string, view_type, tuple(order_by or ()))
        if all(type(value) in (str, int) for value in experiment_ids):
            statement = _search_statement(*arguments)  # a search asked before (a client polling, the UI's pages)
        else:
            statement = _search_statement.__wrapped__(*arguments)  # the ids' own error, unhashable as given
        offset = page_offset(page_token)
        return await self.reads.read(functools.partial(_search_page, statement, offset, max_results))

    async def count_runs(self, experiment_ids: list[object], filter_string: str | None, view_type: str | None) -> int:
        """How many runs `search_runs` would page through with these arguments."""
        query = _runs_query(experiment_ids, filter_string, view_type).with_only_columns(func.count())
        async with self.engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    async def child_run_counts(self, parent_ids: list[str], view_type: str | None) -> dict[str, int]:
        """How many runs name each of `parent_ids` as their parent (tag mlflow.parentRunId); the UI's run tree."""
        counts: dict[str, int] = {}
        tag = s.tags
        async with self.engine.connect() as conn:
            for start in range(0, len(parent_ids), IN_BATCH):
                query = (
                    select(tag.c.value, func.count(tag.c.run_uuid))
                    .join(s.runs, s.runs.c.run_uuid == tag.c.run_uuid)
                    .where(tag.c.key == PARENT_RUN_TAG, tag.c.value.in_(parent_ids[start : start + IN_BATCH]))
                    .group_by(tag.c.value)
                )
                for parent, count in (await conn.execute(lifecycle(query, s.runs.c.lifecycle_stage, view_type))).all():
                    counts[parent] = int(count)
        return counts

    async def child_runs(
        self, experiment_ids: list[object], parent_id: str, view_type: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """The newest `limit` runs whose parent is `parent_id`, and whether there are more. Found from the
        tags (one pass over them), not by testing every run of the experiments as a filter would."""
        ids = [int_field(value, "experiment_ids") for value in experiment_ids]
        tagged = select(s.tags.c.run_uuid).where(s.tags.c.key == PARENT_RUN_TAG, s.tags.c.value == parent_id)
        query = (
            select(s.runs)
            .where(s.runs.c.run_uuid.in_(tagged), s.runs.c.experiment_id.in_(ids))
            .order_by(s.runs.c.start_time.desc(), s.runs.c.run_uuid)
            .limit(limit + 1)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(lifecycle(query, s.runs.c.lifecycle_stage, view_type))).all()
            return await conn.run_sync(runs_json, rows[:limit]), len(rows) > limit


def _runs_query(experiment_ids: Sequence[object], filter_string: str | None, view_type: str | None) -> Any:
    """The runs of `experiment_ids` that `filter_string` and `view_type` let through, in no order."""
    try:
        comparisons = parse_filter(filter_string)
    except InvalidFilter as exc:
        raise InvalidValue(str(exc)) from None
    ids = [int_field(value, "experiment_ids") for value in experiment_ids]
    query = select(s.runs).where(s.runs.c.experiment_id.in_(list(filter(possible_experiment_id, ids))))
    query = lifecycle(query, s.runs.c.lifecycle_stage, view_type)
    for comparison in comparisons:
        query = query.where(run_condition(comparison))
    return query


class _SearchStatement:
    """A run search's statement, built once for its arguments, compiled once for the database with the
    page's LIMIT and OFFSET as placeholders and run through the driver (`driver_rows`): SQLAlchemy's
    cache key and row processing of every execution were most of a search's time."""

    def __init__(self, query: Any) -> None:
        self.query = query
        # By dialect: the statements are kept per process, and one process may use both (the tests do).
        self._compiled: dict[str, tuple[str, list[str], dict[str, Any]]] = {}

    def page(self, conn: Connection, offset: int, limit: int) -> Sequence[Any]:
        """The rows of runs `offset` to `offset + limit`: every column of the runs table, in its order."""
        dialect = conn.dialect.name
        if dialect not in self._compiled:  # two threads may both compile it: the same text either way
            paged = self.query.limit(bindparam("page_limit", 0)).offset(bindparam("page_offset", 0))
            # The experiment ids' IN rendered as one placeholder each (the ids are part of the statement).
            compiled = paged.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
            self._compiled[dialect] = str(compiled), list(compiled.positiontup or ()), dict(compiled.params)
        text, names, values = self._compiled[dialect]
        page = {"page_limit": limit, "page_offset": offset}
        return driver_rows(conn, text, [page[name] if name in page else values[name] for name in names])


@functools.lru_cache(maxsize=256)
def _search_statement(
    experiment_ids: tuple[object, ...], filter_string: str | None, view_type: str | None, order_by: tuple[str, ...]
) -> _SearchStatement:
    """The statement of a run search, checked in MLflow's order (order_by, filter, experiment ids): the
    parse and the SQLAlchemy statement were a third of a 600-run search's time in the server. A refused
    search raises, and is not kept."""
    try:
        ordering = parse_order_by(list(order_by))
    except InvalidFilter as exc:
        raise InvalidValue(str(exc)) from None
    return _SearchStatement(order_runs(_runs_query(experiment_ids, filter_string, view_type), ordering))


_CHILD_TABLES = ("latest_metrics", "params", "tags", "run_inputs", "run_model_inputs", "run_outputs")
"""A run's child tables, in the order `run_text` takes their rows."""
_CHILD_ORDER = {"latest_metrics": "key", "params": "key", "tags": "key", "run_model_inputs": "model_id"}
"""The column a run's children are listed by, where MLflow lists them in an order."""


def _slot_kind(column: Any) -> str:
    """The union column a child column travels in: by its Python type (text, float, bool or int)."""
    return {str: "text", float: "float", bool: "bool"}.get(column.type.python_type, "int")


_SLOT_TYPES: dict[str, TypeEngine[Any]] = {
    "text": Text(),
    "float": Float(precision=53),
    "bool": Boolean(),
    "int": BigInteger(),
}


@functools.cache
def _postgresql_children() -> tuple[str, list[tuple[str, Callable[[Any], Any]]]]:
    """The text of one statement reading every child table's rows of runs bound as one array ($1), and
    for each table its name and how to make its row (a `_plain_row`) out of a row of the statement.

    A UNION ALL of the six tables, each row a table number, an order key and the table's columns in
    typed slots (NULL where a table has fewer), read through the driver: a statement on PostgreSQL
    costs a round trip and SQLAlchemy's execution and row handling, about 0.4 ms even when it finds
    nothing, and a 600-run search's page read six per chunk of runs (13.8 -> 10.6 ms for the page,
    benchmarks/RESULTS.md). Each table's rows come in the order its own query gave them. The ids as
    `IN (SELECT unnest(ids))`, which PostgreSQL joins by hash: `= ANY(ids)` in the generic plan of a
    prepared statement compares every row with every id (0.9 against 0.3 ms for 100 runs' metrics)."""
    tables = [s.metadata.tables[name] for name in _CHILD_TABLES]
    width = {kind: max(sum(_slot_kind(c) == kind for c in t.c) for t in tables) for kind in _SLOT_TYPES}
    slots = [(kind, n) for kind in _SLOT_TYPES for n in range(width[kind])]
    ids = bindparam("ids", type_=postgresql.ARRAY(String(32)))
    selects = []
    readers: list[tuple[str, Callable[[Any], Any]]] = []
    for number, table in enumerate(tables):
        placed: dict[tuple[str, int], Any] = {}
        positions = []  # of the table's columns in the union's row (after `child` and `ordering`)
        for column in table.c:
            kind = _slot_kind(column)
            slot = (kind, sum(k == kind for k, _ in placed))
            placed[slot] = column
            positions.append(2 + slots.index(slot))
        order = table.c[_CHILD_ORDER[table.name]] if table.name in _CHILD_ORDER else null()
        columns = [
            (placed[slot] if slot in placed else cast(null(), _SLOT_TYPES[slot[0]])).label(f"{slot[0]}{slot[1]}")
            for slot in slots
        ]
        selects.append(
            select(literal_column(str(number)).label("child"), cast(order, Text).label("ordering"), *columns).where(
                table.c.run_uuid.in_(select(func.unnest(ids)))
            )
        )
        readers.append((table.name, _row_reader(table.name, positions)))
    statement = union_all(*selects).order_by(literal_column("child"), literal_column("ordering"))
    return str(statement.compile(dialect=PGDialect_asyncpg())), readers  # type: ignore[no-untyped-call]


def _row_reader(table_name: str, positions: list[int]) -> Callable[[Any], Any]:
    """A function making `table_name`'s row out of the values at `positions` of another row."""
    columns_of, make = operator.itemgetter(*positions), _plain_row(table_name)

    def read(row: Any) -> Any:
        return make(columns_of(row))

    return read


@functools.lru_cache(maxsize=1024)
def _sqlite_children(table_name: str, count: int) -> str:
    """The SQLite text reading `table_name`'s rows for `count` runs (one `?` each), in its order."""
    table = s.metadata.tables[table_name]
    ids: list[Any] = [bindparam(f"id_{n}") for n in range(count)]
    query = select(table).where(table.c.run_uuid.in_(ids))
    return sqlite_text(query.order_by(table.c[_CHILD_ORDER[table_name]]) if table_name in _CHILD_ORDER else query)


@functools.cache
def _plain_row(table_name: str) -> Callable[[Iterable[Any]], Any]:
    """A row of `table_name`'s columns (all, in order) as a named tuple: read by name faster than
    SQLAlchemy's rows, and what the driver's plain tuples become."""
    row_type: Any = collections.namedtuple(f"{table_name}_row", s.metadata.tables[table_name].c.keys())  # type: ignore[misc]
    return row_type._make


_RUN_ROW = _plain_row(s.runs.name)


def _children_rows(conn: Connection, ids: list[str]) -> dict[str, list[Any]]:
    """Each child table's rows for runs `ids`, as named tuples, read through the driver: SQLAlchemy's
    expanding IN and row processing were most of a search's time. On SQLite a statement per table
    whose text is built once per table and count; on PostgreSQL one statement for all the tables."""
    if conn.dialect.name == "sqlite":
        return {
            name: list(map(_plain_row(name), driver_rows(conn, _sqlite_children(name, len(ids)), ids)))
            for name in _CHILD_TABLES
        }
    text, readers = _postgresql_children()
    found: dict[str, list[Any]] = {name: [] for name in _CHILD_TABLES}
    for row in driver_rows(conn, text, [ids]):
        name, read = readers[row[0]]
        found[name].append(read(row))
    return found


def runs_text(conn: Connection, rows: Sequence[Any]) -> list[str]:
    """Runs in MLflow's shape, as JSON text; the child rows read for the whole page, not per run."""
    ids = [row.run_uuid for row in rows]
    children: dict[str, dict[str, list[Any]]] = {name: {run_id: [] for run_id in ids} for name in _CHILD_TABLES}
    for offset in range(0, len(ids), IN_BATCH):  # bound the bind parameters per statement
        for name, found in _children_rows(conn, ids[offset : offset + IN_BATCH]).items():
            grouped = children[name]
            for child in found:
                grouped[child.run_uuid].append(child)
    return [run_text(row, *(children[name][row.run_uuid] for name in _CHILD_TABLES)) for row in rows]


def runs_json(conn: Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Runs in MLflow's shape, as dicts."""
    return [json.loads(text) for text in runs_text(conn, rows)]


def _search_page(
    statement: _SearchStatement, offset: int, max_results: int, conn: Connection
) -> tuple[list[str], str | None]:
    """One page of a run search as each run's JSON text: the runs' rows, then their children a chunk at
    a time; the page ends once it holds PAGE_BYTES (never empty): runs with MLflow's largest params
    and tags would otherwise make one answer of hundreds of MiB."""
    rows = statement.page(conn, offset, max_results + 1)
    page = list(map(_RUN_ROW, rows[:max_results]))
    found: list[str] = []
    size = start = 0
    chunk = RUNS_PER_CHUNK
    while start < len(page):
        for run in runs_text(conn, page[start : start + chunk]):
            if found and size >= PAGE_BYTES:
                return found, offset_token(offset + len(found))
            found.append(run)
            size += len(run)
        start += chunk
        chunk = next_chunk(start, size)
    return found, offset_token(offset + max_results) if len(rows) > max_results else None


def next_chunk(runs_read: int, bytes_read: int) -> int:
    """How many runs' children to read next: as many as the page's remaining PAGE_BYTES hold at the
    size of the runs read so far (one statement per IN_BATCH at most): a 1,000-run page of small runs is
    read in three chunks, not ten, and a page of large runs stays within its bytes."""
    per_run = max(1, bytes_read // max(1, runs_read))
    return max(1, min(IN_BATCH, (PAGE_BYTES - bytes_read) // per_run))


ATTRIBUTE_COLUMNS = {
    "run_id": s.runs.c.run_uuid,
    "run_name": s.runs.c.name,
    "status": s.runs.c.status,
    "user_id": s.runs.c.user_id,
    "start_time": s.runs.c.start_time,
    "end_time": s.runs.c.end_time,
    "artifact_uri": s.runs.c.artifact_uri,
    "lifecycle_stage": s.runs.c.lifecycle_stage,
}


def run_condition(comparison: Comparison) -> ColumnElement[bool]:
    entity, key, op, value = comparison.entity, comparison.key, comparison.op, comparison.value
    run = s.runs.c.run_uuid
    if entity == "attribute":
        if key not in ATTRIBUTE_COLUMNS:
            raise InvalidValue(f"Invalid attribute key '{key}'")
        return compare(ATTRIBUTE_COLUMNS[key], op, value)
    if entity == "metric":
        table = s.latest_metrics
        matched = exists().where(
            table.c.run_uuid == run, table.c.key == key, not_(table.c.is_nan), compare(table.c.value, op, value)
        )
        return matched
    if entity in ("param", "tag"):
        table = s.params if entity == "param" else s.tags
        if op == "IS NULL":
            return not_(exists().where(table.c.run_uuid == run, table.c.key == key))
        if op == "IS NOT NULL":
            return exists().where(table.c.run_uuid == run, table.c.key == key)
        return exists().where(table.c.run_uuid == run, table.c.key == key, compare(table.c.value, op, value))
    if entity == "dataset":
        column = {"name": s.run_inputs.c.name, "digest": s.run_inputs.c.digest}.get(key)
        if column is None:
            context = s.run_inputs.c.tags.like(f'%"mlflow.data.context"%"{value}"%')
            return exists().where(s.run_inputs.c.run_uuid == run, context)
        return exists().where(s.run_inputs.c.run_uuid == run, compare(column, op, value))
    raise InvalidValue(f"Invalid entity '{entity}' in filter")


def order_runs(query: Any, ordering: list[OrderBy]) -> Any:
    clauses: list[Any] = []
    for index, order in enumerate(ordering):
        if order.entity == "attribute":
            column = ATTRIBUTE_COLUMNS.get(order.key)
            if column is None:
                raise InvalidValue(f"Invalid order_by attribute '{order.key}'")
        else:
            table = {"metric": s.latest_metrics, "param": s.params, "tag": s.tags}.get(order.entity)
            if table is None:
                raise InvalidValue(f"Cannot order by '{order.entity}'")
            alias = table.alias(f"order_{index}")
            query = query.outerjoin(alias, and_(alias.c.run_uuid == s.runs.c.run_uuid, alias.c.key == order.key))
            column = alias.c.value
        if order.entity != "attribute" or column.nullable:  # outer-joined values may be missing too
            clauses.append(column.is_(None))  # MLflow puts runs without the value last, whichever the direction
        clauses.append(column.asc() if order.ascending else column.desc())
    if not (ordering and ordering[0].entity == "attribute" and ordering[0].key == "start_time"):
        clauses.append(s.runs.c.start_time.desc())
    clauses.append(s.runs.c.run_uuid)  # the tiebreak: ix_runs_experiment_start serves the default order
    return query.order_by(*clauses)
