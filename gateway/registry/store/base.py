"""What the registry store's parts share: the engine, row lookups, and the JSON MLflow answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from gateway.store import schema as s
from gateway.store.errors import NotFound
from gateway.store.sql import compare

MODEL = s.registered_models.c
VERSION = s.model_versions.c


class RegistryBase:
    """The registry store over one async SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def _model_row(self, conn: AsyncConnection, name: str) -> Any:
        row = (await conn.execute(select(s.registered_models).where(MODEL.name == name))).first()
        if row is None:
            raise NotFound(f"Registered Model with name={name} not found")
        return row

    async def _version_row(self, conn: AsyncConnection, name: str, version: int) -> Any:
        row = (
            await conn.execute(
                select(s.model_versions, MODEL.name)
                .join(s.registered_models, MODEL.registered_model_id == VERSION.registered_model_id)
                .where(MODEL.name == name, VERSION.version == version)
            )
        ).first()
        if row is None:
            raise NotFound(f"Model Version (name={name}, version={version}) not found")
        return row

    async def _versions_json(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        """Model versions as MLflow answers them, with their tags and aliases (two queries for all)."""
        if not rows:
            return []
        keys = {(row.registered_model_id, row.version) for row in rows}
        model_ids = {key[0] for key in keys}
        tags: dict[tuple[int, int], list[dict[str, str]]] = {}
        tag_table = s.model_version_tags.c
        for tag in await conn.execute(
            select(s.model_version_tags).where(tag_table.registered_model_id.in_(model_ids)).order_by(tag_table.key)
        ):
            if (tag.registered_model_id, tag.version) in keys:
                tags.setdefault((tag.registered_model_id, tag.version), []).append({"key": tag.key, "value": tag.value})
        aliases: dict[tuple[int, int], list[str]] = {}
        alias_table = s.registered_model_aliases.c
        for alias in await conn.execute(
            select(s.registered_model_aliases)
            .where(alias_table.registered_model_id.in_(model_ids))
            .order_by(alias_table.alias)
        ):
            aliases.setdefault((alias.registered_model_id, alias.version), []).append(alias.alias)
        return [
            version_json(row, tags.get(key, []), aliases.get(key, []))
            for row in rows
            for key in [(row.registered_model_id, row.version)]
        ]

    async def _models_json(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        """Registered models with their tags, aliases and latest version of each stage."""
        if not rows:
            return []
        ids = [row.registered_model_id for row in rows]
        tags: dict[int, list[dict[str, str]]] = {}
        for tag in await conn.execute(
            select(s.registered_model_tags)
            .where(s.registered_model_tags.c.registered_model_id.in_(ids))
            .order_by(s.registered_model_tags.c.key)
        ):
            tags.setdefault(tag.registered_model_id, []).append({"key": tag.key, "value": tag.value})
        aliases: dict[int, list[dict[str, str]]] = {}
        alias_table = s.registered_model_aliases.c
        for alias in await conn.execute(
            select(s.registered_model_aliases)
            .where(alias_table.registered_model_id.in_(ids))
            .order_by(alias_table.alias)
        ):
            aliases.setdefault(alias.registered_model_id, []).append(
                {"alias": alias.alias, "version": str(alias.version)}
            )
        latest = await self._latest_rows(conn, ids, None)
        latest_json = await self._versions_json(conn, latest)
        by_model: dict[int, list[dict[str, Any]]] = {}
        for row, shaped in zip(latest, latest_json, strict=True):
            shaped.pop("aliases", None)  # MLflow lists a model's aliases once, on the model
            by_model.setdefault(row.registered_model_id, []).append(shaped)
        return [
            model_json(
                row,
                by_model.get(row.registered_model_id, []),
                tags.get(row.registered_model_id, []),
                aliases.get(row.registered_model_id, []),
            )
            for row in rows
        ]

    async def _latest_rows(self, conn: AsyncConnection, model_ids: list[int], stages: set[str] | None) -> list[Any]:
        """The highest version of each stage of each model (of `stages` only, when given)."""
        newest = (
            select(VERSION.registered_model_id, VERSION.current_stage, func.max(VERSION.version).label("version"))
            .where(VERSION.registered_model_id.in_(model_ids))
            .group_by(VERSION.registered_model_id, VERSION.current_stage)
            .subquery()
        )
        query = (
            select(s.model_versions, MODEL.name)
            .join(s.registered_models, MODEL.registered_model_id == VERSION.registered_model_id)
            .join(
                newest,
                (newest.c.registered_model_id == VERSION.registered_model_id) & (newest.c.version == VERSION.version),
            )
            .order_by(VERSION.registered_model_id, VERSION.version)
        )
        if stages is not None:
            query = query.where(VERSION.current_stage.in_(sorted(stages)))
        return list((await conn.execute(query)).all())


def model_json(
    row: Any, latest: list[dict[str, Any]], tags: list[dict[str, str]], aliases: list[dict[str, str]]
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": row.name,
        "creation_timestamp": row.creation_time,
        "last_updated_timestamp": row.last_updated_time,
    }
    if row.description is not None:
        body["description"] = row.description
    if latest:
        body["latest_versions"] = latest
    if tags:
        body["tags"] = tags
    if aliases:
        body["aliases"] = aliases
    return body


def version_json(row: Any, tags: list[dict[str, str]], aliases: list[str]) -> dict[str, Any]:
    """As MLflow 3.17's SQL store answers a version (it leaves `model_id` out; so does this server)."""
    body: dict[str, Any] = {
        "name": row.name,
        "version": str(row.version),
        "creation_timestamp": row.creation_time,
        "last_updated_timestamp": row.last_updated_time,
    }
    if row.user_id is not None:
        body["user_id"] = row.user_id
    body["current_stage"] = row.current_stage
    body["description"] = row.description or ""
    body["source"] = row.source
    body["run_id"] = row.run_id or ""  # MLflow keeps the request's "" when no run is named
    body["status"] = row.status
    if row.status_message is not None:
        body["status_message"] = row.status_message
    if tags:
        body["tags"] = tags
    body["run_link"] = row.run_link or ""
    if aliases:
        body["aliases"] = aliases
    return body


IS_PROMPT_TAG = "mlflow.prompt.is_prompt"
"""The tag that marks a registered model (and its versions) as a prompt."""


def search_conditions(
    comparisons: Sequence[Any], owner: ColumnElement[bool], any_version: ColumnElement[bool], tag: Any
) -> list[ColumnElement[bool]]:
    """The tag comparisons of a search, and whether prompts or models are searched, as MLflow decides.

    `owner` relates a row to its own tags; `any_version` relates it to the tags that make it a prompt.
    A search finds models only, unless its first `tags.`mlflow.prompt.is_prompt`` comparison asks for
    prompts (`= 'true'` or `!= 'false'`); that comparison and any other on the key only choose the side,
    which MLflow's store does with an anti-join because plain models have no such tag.
    """
    wants_prompts = False
    for comparison in comparisons:
        if comparison.key == IS_PROMPT_TAG:
            value = str(comparison.value).lower()
            wants_prompts = (comparison.op == "=" and value == "true") or (comparison.op == "!=" and value == "false")
            break
    is_prompt = exists().where(and_(any_version, tag.key == IS_PROMPT_TAG, tag.value == "true"))
    conditions = [is_prompt if wants_prompts else ~is_prompt]
    conditions.extend(
        exists().where(and_(owner, tag.key == comparison.key, compare(tag.value, comparison.op, comparison.value)))
        for comparison in comparisons
        if comparison.key != IS_PROMPT_TAG
    )
    return conditions
