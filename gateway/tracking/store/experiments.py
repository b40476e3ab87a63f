"""Experiments: create, read, search, rename, delete and restore, tags."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, exists, func, insert, not_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from gateway.store import schema as s
from gateway.store.errors import AlreadyExists, InvalidValue
from gateway.store.pages import offset_token, page_offset
from gateway.store.sql import compare, upsert
from gateway.tracking.limits import MAX_EXPERIMENT_NAME, MAX_EXPERIMENT_TAG_VALUE
from gateway.tracking.search_filter import (
    Comparison,
    InvalidFilter,
    OrderBy,
    parse_experiment_filter,
    parse_experiment_order_by,
)
from gateway.tracking.store.base import StoreBase
from gateway.tracking.store.sql import lifecycle
from gateway.tracking.store.values import (
    ACTIVE,
    DEFAULT_EXPERIMENT_ID,
    DELETED,
    check_key,
    check_length,
    check_value,
    missing,
    not_found,
    now_ms,
    possible_experiment_id,
    wrong_type,
)


def experiment_name(name: object) -> str:
    """A new experiment's name as MLflow checks it: present, a string, not blank, at most 500 characters."""
    if name is None or name == "":
        raise missing("name")
    if not isinstance(name, str):
        raise wrong_type(name, "name")
    if not name.strip():
        raise InvalidValue(f"Invalid experiment name: '{name}'")
    return check_length(name, MAX_EXPERIMENT_NAME, "name")


class ExperimentStore(StoreBase):
    """Experiments, their tags and lifecycle (deleting one marks its runs deleted too)."""

    async def ensure_default_experiment(self) -> None:
        """MLflow's experiment 0, 'Default', created once (concurrent starts race harmlessly)."""
        async with self.engine.begin() as conn:
            found = await conn.scalar(
                select(s.experiments.c.experiment_id).where(s.experiments.c.experiment_id == DEFAULT_EXPERIMENT_ID)
            )
            if found is not None:
                return
        try:
            async with self.engine.begin() as conn:
                stamp = now_ms()
                await conn.execute(
                    insert(s.experiments).values(
                        experiment_id=DEFAULT_EXPERIMENT_ID,
                        name="Default",
                        artifact_location=self._location(DEFAULT_EXPERIMENT_ID),
                        lifecycle_stage=ACTIVE,
                        creation_time=stamp,
                        last_update_time=stamp,
                    )
                )
        except IntegrityError:
            pass

    def _location(self, experiment_id: int) -> str:
        root = self.default_artifact_root
        return f"{root}{experiment_id}" if root.endswith("/") else f"{root}/{experiment_id}"

    async def create_experiment(self, name: object, artifact_location: str | None, tags: list[dict[str, Any]]) -> str:
        name = experiment_name(name)
        stamp = now_ms()
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    insert(s.experiments).values(
                        name=name,
                        artifact_location=artifact_location or "",
                        lifecycle_stage=ACTIVE,
                        creation_time=stamp,
                        last_update_time=stamp,
                    )
                )
                experiment_id = int(result.inserted_primary_key[0])  # type: ignore[index]
                if not artifact_location:
                    await conn.execute(
                        update(s.experiments)
                        .where(s.experiments.c.experiment_id == experiment_id)
                        .values(artifact_location=self._location(experiment_id))
                    )
                for tag in tags:
                    key, value = experiment_tag(tag.get("key"), tag.get("value"))
                    await conn.execute(
                        insert(s.experiment_tags).values(experiment_id=experiment_id, key=key, value=value)
                    )
        except IntegrityError:
            raise AlreadyExists(f"Experiment(name={name}) already exists.") from None
        return str(experiment_id)

    async def _experiment_json(self, conn: AsyncConnection, row: Any) -> dict[str, Any]:
        tag_rows = (
            await conn.execute(select(s.experiment_tags).where(s.experiment_tags.c.experiment_id == row.experiment_id))
        ).all()
        body: dict[str, Any] = {
            "experiment_id": str(row.experiment_id),
            "name": row.name,
            "artifact_location": row.artifact_location,
            "lifecycle_stage": row.lifecycle_stage,
            "last_update_time": row.last_update_time,
            "creation_time": row.creation_time,
            "workspace": "default",  # MLflow 3.17's, with workspaces off: every experiment is in "default"
        }
        if tag_rows:
            body["tags"] = [{"key": t.key, "value": t.value} for t in tag_rows]
        return body

    async def get_experiment(self, experiment_id: object) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            return await self._experiment_json(conn, await self._experiment_row(conn, experiment_id))

    async def get_experiment_by_name(self, name: object) -> dict[str, Any]:
        if not isinstance(name, str) or not name:
            raise InvalidValue("Missing value for required parameter 'experiment_name'")
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(s.experiments).where(s.experiments.c.name == name))).first()
            if row is None:
                raise not_found(f"Could not find experiment with name '{name}'")
            return await self._experiment_json(conn, row)

    async def search_experiments(
        self,
        view_type: str,
        max_results: int,
        filter_string: str | None,
        page_token: str | None,
        *,
        order_by: list[str] | None = None,
        name_contains: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of experiments in MLflow's order (newest first unless `order_by` says otherwise).

        `filter_string` and `order_by` are MLflow's experiment search language; `name_contains`
        (case-insensitive, taken literally) is the UI's search box.
        """
        try:
            comparisons = parse_experiment_filter(filter_string)
            ordering = parse_experiment_order_by(order_by)
        except InvalidFilter as exc:
            raise InvalidValue(str(exc)) from None
        offset = page_offset(page_token)
        query = select(s.experiments)
        query = lifecycle(query, s.experiments.c.lifecycle_stage, view_type)
        if name_contains:
            query = query.where(func.lower(s.experiments.c.name).contains(name_contains.lower(), autoescape=True))
        for comparison in comparisons:
            query = query.where(experiment_condition(comparison))
        query = query.order_by(*experiment_order(ordering)).offset(offset).limit(max_results + 1)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            found = [await self._experiment_json(conn, row) for row in rows[:max_results]]
        return found, offset_token(offset + max_results) if len(rows) > max_results else None

    async def update_experiment(self, experiment_id: object, new_name: object) -> None:
        if not isinstance(new_name, str) or not new_name.strip():
            raise InvalidValue("Missing value for required parameter 'new_name'")
        check_length(new_name, MAX_EXPERIMENT_NAME, "new_name")
        try:
            async with self.engine.begin() as conn:
                row = await self._experiment_row(conn, experiment_id)
                if row.lifecycle_stage != ACTIVE:  # MLflow refuses too, with a 500 INVALID_STATE
                    raise InvalidValue("Cannot rename a non-active experiment.")
                await conn.execute(
                    update(s.experiments)
                    .where(s.experiments.c.experiment_id == row.experiment_id)
                    .values(name=new_name, last_update_time=now_ms())
                )
        except IntegrityError:
            raise AlreadyExists(f"Experiment(name={new_name}) already exists.") from None

    async def set_experiment_lifecycle(self, experiment_id: object, stage: str) -> None:
        """Delete or restore an experiment and all its runs; the default experiment '0' too, as MLflow 3.17."""
        async with self.engine.begin() as conn:
            row = await self._experiment_row(conn, experiment_id)
            stamp = now_ms()
            await conn.execute(
                update(s.experiments)
                .where(s.experiments.c.experiment_id == row.experiment_id)
                .values(lifecycle_stage=stage, last_update_time=stamp)
            )
            await conn.execute(
                update(s.runs)
                .where(s.runs.c.experiment_id == row.experiment_id)
                .values(lifecycle_stage=stage, deleted_time=stamp if stage == DELETED else None)
            )

    async def set_experiment_tag(self, experiment_id: object, key: object, value: object) -> None:
        checked_key, checked_value = experiment_tag(key, value)
        async with self.engine.begin() as conn:
            row = await self._active_experiment(conn, experiment_id)
            await upsert(
                conn,
                s.experiment_tags,
                {"experiment_id": row.experiment_id, "key": checked_key},
                {"value": checked_value},
            )

    async def delete_experiment_tag(self, experiment_id: object, key: object) -> None:
        checked_key = check_key(key)
        async with self.engine.begin() as conn:
            row = await self._active_experiment(conn, experiment_id)
            result = await conn.execute(
                delete(s.experiment_tags).where(
                    s.experiment_tags.c.experiment_id == row.experiment_id, s.experiment_tags.c.key == checked_key
                )
            )
            if result.rowcount == 0:
                raise not_found(f"No tag with name: {checked_key} in experiment with id {row.experiment_id}")

    async def experiment_keys(self, experiment_id: int, newest_runs: int) -> dict[str, list[str]]:
        """The param, metric and tag keys of the experiment's `newest_runs` runs, sorted: the UI's columns.

        The caller has already found the experiment (an unknown id just has no keys). Bounded by run
        count so that an experiment of any size answers in the same time.
        """
        async with self.engine.connect() as conn:
            runs_of = (
                select(s.runs.c.run_uuid)
                .where(s.runs.c.experiment_id == experiment_id)
                .order_by(s.runs.c.start_time.desc(), s.runs.c.run_uuid)
                .limit(newest_runs)
            )
            found: dict[str, list[str]] = {}
            for kind, table in (("params", s.params), ("metrics", s.latest_metrics), ("tags", s.tags)):
                query = select(table.c.key).where(table.c.run_uuid.in_(runs_of)).distinct().order_by(table.c.key)
                found[kind] = list((await conn.scalars(query)).all())
        return found


def experiment_tag(key: object, value: object) -> tuple[str, str]:
    """An experiment tag's key and value, checked: values up to MLflow's 20,000 characters (run tags: 8,000)."""
    return check_key(key), check_value(value, MAX_EXPERIMENT_TAG_VALUE, "value")


EXPERIMENT_COLUMNS: dict[str, Any] = {
    "name": s.experiments.c.name,
    "experiment_id": s.experiments.c.experiment_id,
    "creation_time": s.experiments.c.creation_time,
    "last_update_time": s.experiments.c.last_update_time,
}
DEFAULT_EXPERIMENT_ORDER = [
    OrderBy("attribute", "creation_time", ascending=False),
    OrderBy("attribute", "experiment_id", ascending=True),
]
"""MLflow's order when a search names none: the newest first."""


def experiment_condition(comparison: Comparison) -> ColumnElement[bool]:
    """One parsed clause of an experiment filter as a condition on `experiments`."""
    key, op, value = comparison.key, comparison.op, comparison.value
    if comparison.entity == "tag":
        table = s.experiment_tags
        of_experiment = (table.c.experiment_id == s.experiments.c.experiment_id, table.c.key == key)
        if op == "IS NULL":
            return not_(exists().where(*of_experiment))
        if op == "IS NOT NULL":
            return exists().where(*of_experiment)
        return exists().where(*of_experiment, compare(table.c.value, op, value))
    column = EXPERIMENT_COLUMNS[key]
    if key == "experiment_id":
        # Ids beyond the 32-bit column name no experiment (and PostgreSQL would refuse the parameter).
        given = value if isinstance(value, tuple) else (value,)
        ids = [number for number in given if isinstance(number, int) and possible_experiment_id(number)]
        return column.in_(ids) if op in ("=", "IN") else column.not_in(ids)  # type: ignore[no-any-return]
    return compare(column, op, value)


def experiment_order(ordering: list[OrderBy]) -> list[Any]:
    """ORDER BY clauses as MLflow's store builds them: the default order when none is given, and the
    experiment id (descending) as the last tie-breaker unless the order names it."""
    ordering = ordering or DEFAULT_EXPERIMENT_ORDER
    clauses = []
    for order in ordering:
        column = EXPERIMENT_COLUMNS[order.key]
        clauses.append(column.asc() if order.ascending else column.desc())
    if not any(order.key == "experiment_id" for order in ordering):
        clauses.append(s.experiments.c.experiment_id.desc())
    return clauses
