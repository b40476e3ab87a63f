"""Experiments: create, read, search, rename, delete and restore, tags."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import and_, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from gateway.store import schema as s
from gateway.store.errors import AlreadyExists, InvalidValue
from gateway.tracking.limits import MAX_TAG_VALUE
from gateway.tracking.store.base import StoreBase
from gateway.tracking.store.sql import compare, lifecycle, upsert
from gateway.tracking.store.values import (
    ACTIVE,
    DEFAULT_EXPERIMENT_ID,
    DELETED,
    check_key,
    check_value,
    not_found,
    now_ms,
    offset_token,
    page_offset,
)


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
        if not isinstance(name, str) or not name.strip():
            raise InvalidValue("Missing value for required parameter 'name'")
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
                    await conn.execute(
                        insert(s.experiment_tags).values(
                            experiment_id=experiment_id,
                            key=check_key(tag.get("key")),
                            value=check_value(tag.get("value"), MAX_TAG_VALUE, "value"),
                        )
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
        name_contains: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of experiments; `name_contains` (case-insensitive, taken literally) is the UI's search box."""
        query = select(s.experiments)
        query = lifecycle(query, s.experiments.c.lifecycle_stage, view_type)
        if name_contains:
            query = query.where(func.lower(s.experiments.c.name).contains(name_contains.lower(), autoescape=True))
        if filter_string:
            if not isinstance(filter_string, str):
                raise InvalidValue("'filter' must be a string")
            query = query.where(experiment_filter(filter_string))
        offset = page_offset(page_token)
        query = query.order_by(s.experiments.c.experiment_id).offset(offset).limit(max_results + 1)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            found = [await self._experiment_json(conn, row) for row in rows[:max_results]]
        return found, offset_token(offset + max_results) if len(rows) > max_results else None

    async def update_experiment(self, experiment_id: object, new_name: object) -> None:
        if not isinstance(new_name, str) or not new_name.strip():
            raise InvalidValue("Missing value for required parameter 'new_name'")
        try:
            async with self.engine.begin() as conn:
                row = await self._experiment_row(conn, experiment_id)
                await conn.execute(
                    update(s.experiments)
                    .where(s.experiments.c.experiment_id == row.experiment_id)
                    .values(name=new_name, last_update_time=now_ms())
                )
        except IntegrityError:
            raise AlreadyExists(f"Experiment(name={new_name}) already exists.") from None

    async def set_experiment_lifecycle(self, experiment_id: object, stage: str) -> None:
        async with self.engine.begin() as conn:
            row = await self._experiment_row(conn, experiment_id)
            if row.experiment_id == DEFAULT_EXPERIMENT_ID and stage == DELETED:
                raise InvalidValue("Cannot delete the default experiment '0'")
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
        async with self.engine.begin() as conn:
            row = await self._experiment_row(conn, experiment_id)
            await upsert(
                conn,
                s.experiment_tags,
                {"experiment_id": row.experiment_id, "key": check_key(key)},
                {"value": check_value(value, MAX_TAG_VALUE, "value")},
            )

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


def experiment_filter(filter_string: str) -> ColumnElement[bool]:
    """MLflow's experiment filter subset used by clients: name and tags comparisons."""
    conditions = []
    for clause in re.split(r"\s+and\s+", filter_string, flags=re.IGNORECASE):
        text = clause.strip()
        for op in (" ILIKE ", " LIKE ", " != ", " = "):
            left, sep, right = text.partition(op)
            if sep:
                value = right.strip().strip("'\"")
                field = left.strip().strip("`")
                if field in ("name", "attribute.name", "attributes.name"):
                    conditions.append(compare(s.experiments.c.name, op.strip(), value))
                elif field.startswith("tags."):
                    key = field[len("tags.") :].strip("`")
                    table = s.experiment_tags
                    conditions.append(
                        exists().where(
                            table.c.experiment_id == s.experiments.c.experiment_id,
                            table.c.key == key,
                            compare(table.c.value, op.strip(), value),
                        )
                    )
                else:
                    raise InvalidValue(f"Invalid attribute key '{field}' in experiment filter")
                break
        else:
            raise InvalidValue(f"Invalid clause '{text}' in experiment filter")
    return and_(*conditions)
