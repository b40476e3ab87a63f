"""Model versions: create (numbers allocated per model without gaps or reuse), read, describe, move
between stages, delete, search; their tags; and the read-only look-ups of the runs and logged models
a version's source names (SQL on the shared schema)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, insert, select, update

from gateway.registry.search_filter import VERSIONS, InvalidFilter, parse_filter, parse_order_by
from gateway.registry.store import values as v
from gateway.registry.store.base import MODEL, VERSION, RegistryBase, search_conditions
from gateway.store import schema as s
from gateway.store.errors import InvalidValue, NotFound
from gateway.store.pages import offset_token, page_offset
from gateway.store.sql import compare, insert_statement

ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class NewVersion:
    """A version to create, its source already checked and resolved by the caller."""

    name: str
    source: str
    storage_location: str
    run_id: str | None
    run_link: str | None
    description: str | None
    model_id: str | None
    user_id: str | None
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class SourceRun:
    run_id: str
    artifact_uri: str


@dataclass(frozen=True, slots=True)
class SourceModel:
    model_id: str
    artifact_location: str
    source_run_id: str | None


@dataclass(frozen=True, slots=True)
class VersionLinks:
    """What a version's page links to: its logged model, and its run with the run's experiment."""

    model_id: str | None
    run_id: str | None
    experiment_id: str | None


class ModelVersionStore(RegistryBase):
    async def create_model_version(self, new: NewVersion) -> dict[str, Any]:
        """The next version of `new.name`. The counter is raised first, in the same transaction: the
        UPDATE takes the model row's lock on PostgreSQL and SQLite's write lock, so registrations of
        one model wait for each other and each gets the next number."""
        now = v.now_ms()
        async with self.engine.begin() as conn:
            counted = (
                await conn.execute(
                    update(s.registered_models)
                    .where(MODEL.name == new.name)
                    .values(next_version=MODEL.next_version + 1, last_updated_time=now)
                    .returning(MODEL.registered_model_id, MODEL.next_version)
                )
            ).first()
            if counted is None:
                raise NotFound(f"Registered Model with name={new.name} not found")
            model, number = counted.registered_model_id, counted.next_version - 1
            await conn.execute(
                insert(s.model_versions).values(
                    registered_model_id=model,
                    version=number,
                    creation_time=now,
                    last_updated_time=now,
                    description=new.description,
                    user_id=new.user_id,
                    current_stage="None",
                    source=new.source,
                    run_id=new.run_id,
                    run_link=new.run_link,
                    status=v.READY,
                    status_message=None,
                    storage_location=new.storage_location,
                    model_id=new.model_id,
                )
            )
            if new.tags:
                await conn.execute(
                    insert(s.model_version_tags),
                    [
                        {"registered_model_id": model, "version": number, "key": key, "value": value}
                        for key, value in new.tags.items()
                    ],
                )
            return (await self._versions_json(conn, [await self._version_row(conn, new.name, number)]))[0]

    async def get_model_version(self, name: object, version: object) -> dict[str, Any]:
        checked, number = v.model_name(name), v.version_number(version)
        async with self.engine.connect() as conn:
            return (await self._versions_json(conn, [await self._version_row(conn, checked, number)]))[0]

    async def model_version_row(self, name: object, version: object) -> Any:
        """The version's row (with its model's name), for callers that resolve sources or downloads."""
        checked, number = v.model_name(name), v.version_number(version)
        async with self.engine.connect() as conn:
            return await self._version_row(conn, checked, number)

    async def get_model_version_download_uri(self, name: object, version: object) -> str:
        row = await self.model_version_row(name, version)
        return str(row.storage_location or row.source)

    async def update_model_version(self, name: object, version: object, description: object) -> dict[str, Any]:
        checked, number = v.model_name(name), v.version_number(version)
        text = v.optional_text(description, "description")
        async with self.engine.begin() as conn:
            row = await self._version_row(conn, checked, number)
            await conn.execute(
                update(s.model_versions)
                .where(VERSION.registered_model_id == row.registered_model_id, VERSION.version == number)
                .values(description=text, last_updated_time=v.now_ms())
            )
            return (await self._versions_json(conn, [await self._version_row(conn, checked, number)]))[0]

    async def transition_model_version_stage(
        self, name: object, version: object, stage: object, archive_existing: bool
    ) -> dict[str, Any]:
        checked, number = v.model_name(name), v.version_number(version)
        if stage is None or stage == "":
            raise v.missing("stage")
        canonical = v.stage(stage)
        if archive_existing and canonical not in v.ACTIVE_STAGES:
            raise InvalidValue(
                "Model version transition cannot archive existing model versions because "
                f"'{stage}' is not an Active stage. Valid stages are {list(v.ACTIVE_STAGES)}"
            )
        now = v.now_ms()
        async with self.engine.begin() as conn:
            row = await self._version_row(conn, checked, number)
            model = row.registered_model_id
            if archive_existing:
                await conn.execute(
                    update(s.model_versions)
                    .where(
                        VERSION.registered_model_id == model,
                        VERSION.version != number,
                        VERSION.current_stage == canonical,
                    )
                    .values(current_stage="Archived", last_updated_time=now)
                )
            await conn.execute(
                update(s.model_versions)
                .where(VERSION.registered_model_id == model, VERSION.version == number)
                .values(current_stage=canonical, last_updated_time=now)
            )
            await conn.execute(
                update(s.registered_models).where(MODEL.registered_model_id == model).values(last_updated_time=now)
            )
            return (await self._versions_json(conn, [await self._version_row(conn, checked, number)]))[0]

    async def delete_model_version(self, name: object, version: object) -> None:
        """The version's metadata, tags and aliases; its number is not given out again, its files stay."""
        checked, number = v.model_name(name), v.version_number(version)
        async with self.engine.begin() as conn:
            row = await self._version_row(conn, checked, number)
            model = row.registered_model_id
            alias, tag = s.registered_model_aliases.c, s.model_version_tags.c
            await conn.execute(
                delete(s.registered_model_aliases).where(alias.registered_model_id == model, alias.version == number)
            )
            await conn.execute(
                delete(s.model_version_tags).where(tag.registered_model_id == model, tag.version == number)
            )
            await conn.execute(
                delete(s.model_versions).where(VERSION.registered_model_id == model, VERSION.version == number)
            )
            await conn.execute(
                update(s.registered_models)
                .where(MODEL.registered_model_id == model)
                .values(last_updated_time=v.now_ms())
            )

    async def set_model_version_tag(self, name: object, version: object, key: object, value: object) -> None:
        checked, number = v.model_name(name), v.version_number(version)
        tag_key, tag_value = v.tag_key(key), v.tag_value(value)
        async with self.engine.begin() as conn:
            row = await self._version_row(conn, checked, number)
            statement = insert_statement(conn, s.model_version_tags).values(
                registered_model_id=row.registered_model_id, version=number, key=tag_key, value=tag_value
            )
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["registered_model_id", "version", "key"],
                    set_={"value": statement.excluded.value},
                )
            )

    async def delete_model_version_tag(self, name: object, version: object, key: object) -> None:
        checked, number = v.model_name(name), v.version_number(version)
        tag_key = v.tag_key(key)
        async with self.engine.begin() as conn:
            row = await self._version_row(conn, checked, number)
            tag = s.model_version_tags.c
            await conn.execute(
                delete(s.model_version_tags).where(
                    tag.registered_model_id == row.registered_model_id, tag.version == number, tag.key == tag_key
                )
            )

    async def search_model_versions(
        self, filter_text: str | None, max_results: int, order_by: list[str], token: object
    ) -> tuple[list[dict[str, Any]], str | None]:
        if max_results < 1:
            raise InvalidValue(f"Invalid value for max_results. It must be a positive integer, but got {max_results}")
        if max_results > v.MAX_VERSIONS:
            raise InvalidValue(
                "Invalid value for request parameter max_results. It must be at most "
                f"{v.MAX_VERSIONS}, but got value {max_results}"
            )
        try:
            comparisons = parse_filter(filter_text, VERSIONS)
            ordering = parse_order_by(
                order_by or ["last_updated_timestamp DESC", "name ASC", "version_number DESC"], VERSIONS
            )
        except InvalidFilter as exc:
            raise InvalidValue(str(exc)) from None
        offset = page_offset(token)
        columns = {
            "name": MODEL.name,
            "run_id": VERSION.run_id,
            "source_path": VERSION.source,
            "version_number": VERSION.version,
            "creation_timestamp": VERSION.creation_time,
            "last_updated_timestamp": VERSION.last_updated_time,
        }
        query = select(s.model_versions, MODEL.name).join(
            s.registered_models, MODEL.registered_model_id == VERSION.registered_model_id
        )
        tag = s.model_version_tags.c
        owner = and_(tag.registered_model_id == VERSION.registered_model_id, tag.version == VERSION.version)
        tags = [comparison for comparison in comparisons if comparison.entity == "tag"]
        # As MLflow: a model any of whose versions is tagged a prompt is a prompt, all its versions with it.
        query = query.where(
            *search_conditions(tags, owner, tag.registered_model_id == VERSION.registered_model_id, tag)
        )
        for comparison in comparisons:
            if comparison.entity != "tag":
                query = query.where(compare(columns[comparison.key], comparison.op, comparison.value))
        clauses = [columns[o.key].asc() if o.ascending else columns[o.key].desc() for o in ordering]
        if not any(o.key == "name" for o in ordering):
            clauses.append(MODEL.name.asc())
        if not any(o.key == "version_number" for o in ordering):
            clauses.append(VERSION.version.desc())
        query = query.order_by(*clauses).offset(offset).limit(max_results + 1)
        async with self.engine.connect() as conn:
            rows = list((await conn.execute(query)).all())
            found = await self._versions_json(conn, rows[:max_results])
        return found, offset_token(offset + max_results) if len(rows) > max_results else None

    # -- the tracking data a source names (read-only) --------------------------------------------

    async def source_run(self, run_id: str) -> SourceRun | None:
        """The active run `run_id`, when there is one."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(s.runs.c.run_uuid, s.runs.c.artifact_uri).where(
                        s.runs.c.run_uuid == run_id, s.runs.c.lifecycle_stage == ACTIVE
                    )
                )
            ).first()
        return SourceRun(row.run_uuid, row.artifact_uri) if row is not None else None

    async def source_model(self, model_id: str) -> SourceModel | None:
        """The active logged model `model_id`, when there is one."""
        c = s.logged_models.c
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(c.model_id, c.artifact_location, c.source_run_id).where(
                        c.model_id == model_id, c.lifecycle_stage == ACTIVE
                    )
                )
            ).first()
        return SourceModel(row.model_id, row.artifact_location, row.source_run_id) if row is not None else None

    async def version_links(self, name: str) -> dict[str, VersionLinks]:
        """Each version of `name` (by number, as a string) with its logged model and its run's experiment,
        for the UI's links (one query)."""
        runs = s.runs.c
        query = (
            select(VERSION.version, VERSION.model_id, VERSION.run_id, runs.experiment_id)
            .join(s.registered_models, MODEL.registered_model_id == VERSION.registered_model_id)
            .outerjoin(s.runs, runs.run_uuid == VERSION.run_id)
            .where(MODEL.name == name)
        )
        async with self.engine.connect() as conn:
            return {
                str(row.version): VersionLinks(
                    row.model_id, row.run_id, None if row.experiment_id is None else str(row.experiment_id)
                )
                for row in await conn.execute(query)
            }
