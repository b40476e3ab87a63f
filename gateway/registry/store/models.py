"""Registered models: create, read, rename, describe, delete, search; their tags and aliases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.registry.search_filter import MODELS, InvalidFilter, parse_filter, parse_order_by
from gateway.registry.store import values as v
from gateway.registry.store.base import MODEL, RegistryBase, search_conditions
from gateway.store import schema as s
from gateway.store.errors import AlreadyExists, InvalidValue, NotFound
from gateway.store.pages import offset_token, page_offset
from gateway.store.sql import compare, insert_statement


class RegisteredModelStore(RegistryBase):
    async def create_registered_model(
        self, name: object, tags: list[dict[str, Any]], description: object
    ) -> dict[str, Any]:
        checked = v.model_name(name)
        tag_values = v.tags(tags)
        text = v.optional_text(description, "description")
        now = v.now_ms()
        try:
            async with self.engine.begin() as conn:
                model_id = (
                    await conn.execute(
                        insert(s.registered_models)
                        .values(
                            name=checked, creation_time=now, last_updated_time=now, description=text, next_version=1
                        )
                        .returning(MODEL.registered_model_id)
                    )
                ).scalar_one()
                if tag_values:
                    await conn.execute(
                        insert(s.registered_model_tags),
                        [{"registered_model_id": model_id, "key": k, "value": val} for k, val in tag_values.items()],
                    )
                row = await self._model_row(conn, checked)
                return (await self._models_json(conn, [row]))[0]
        except IntegrityError:
            raise AlreadyExists(f"Registered Model (name={checked}) already exists.") from None

    async def get_registered_model(self, name: object) -> dict[str, Any]:
        checked = v.model_name(name)
        async with self.engine.connect() as conn:
            return (await self._models_json(conn, [await self._model_row(conn, checked)]))[0]

    async def update_registered_model(self, name: object, description: object) -> dict[str, Any]:
        checked = v.model_name(name)
        text = v.optional_text(description, "description")
        async with self.engine.begin() as conn:
            row = await self._model_row(conn, checked)
            await conn.execute(
                update(s.registered_models)
                .where(MODEL.registered_model_id == row.registered_model_id)
                .values(description=text, last_updated_time=v.now_ms())
            )
            return (await self._models_json(conn, [await self._model_row(conn, checked)]))[0]

    async def rename_registered_model(self, name: object, new_name: object) -> dict[str, Any]:
        if new_name is None or (isinstance(new_name, str) and new_name.strip() == ""):
            raise v.missing("new_name")
        target = v.model_name(new_name, "new_name")
        checked = v.model_name(name)
        now = v.now_ms()
        try:
            async with self.engine.begin() as conn:
                row = await self._model_row(conn, checked)
                await conn.execute(
                    update(s.registered_models)
                    .where(MODEL.registered_model_id == row.registered_model_id)
                    .values(name=target, last_updated_time=now)
                )
                await conn.execute(
                    update(s.model_versions)
                    .where(s.model_versions.c.registered_model_id == row.registered_model_id)
                    .values(last_updated_time=now)
                )
                return (await self._models_json(conn, [await self._model_row(conn, target)]))[0]
        except IntegrityError:
            raise AlreadyExists(f"Registered Model (name={target}) already exists.") from None

    async def delete_registered_model(self, name: object) -> None:
        """The model, its versions, tags and aliases: metadata only, the artifacts stay where they are."""
        checked = v.model_name(name)
        async with self.engine.begin() as conn:
            row = await self._model_row(conn, checked)
            model = row.registered_model_id
            # Children first, explicitly: the cascade needs SQLite's foreign_keys pragma on every connection.
            await conn.execute(
                delete(s.registered_model_aliases).where(s.registered_model_aliases.c.registered_model_id == model)
            )
            await conn.execute(delete(s.model_version_tags).where(s.model_version_tags.c.registered_model_id == model))
            await conn.execute(delete(s.model_versions).where(s.model_versions.c.registered_model_id == model))
            await conn.execute(
                delete(s.registered_model_tags).where(s.registered_model_tags.c.registered_model_id == model)
            )
            await conn.execute(delete(s.registered_models).where(MODEL.registered_model_id == model))

    async def search_registered_models(
        self, filter_text: str | None, max_results: int, order_by: list[str], token: object
    ) -> tuple[list[dict[str, Any]], str | None]:
        if not 1 <= max_results <= v.MAX_MODELS:
            raise InvalidValue(
                "Invalid value for request parameter max_results. It must be at most "
                f"{v.MAX_MODELS}, but got value {max_results}"
            )
        try:
            comparisons = parse_filter(filter_text, MODELS)
            ordering = parse_order_by(order_by, MODELS)
        except InvalidFilter as exc:
            raise InvalidValue(str(exc)) from None
        offset = page_offset(token)
        query = select(s.registered_models)
        tag = s.registered_model_tags.c
        own = tag.registered_model_id == MODEL.registered_model_id
        tags = [comparison for comparison in comparisons if comparison.entity == "tag"]
        query = query.where(*search_conditions(tags, own, own, tag))
        for comparison in comparisons:
            if comparison.entity != "tag":
                query = query.where(compare(MODEL.name, comparison.op, comparison.value))
        columns = {
            "name": MODEL.name,
            "creation_timestamp": MODEL.creation_time,
            "last_updated_timestamp": MODEL.last_updated_time,
        }
        clauses = [columns[o.key].asc() if o.ascending else columns[o.key].desc() for o in ordering]
        if not any(o.key == "name" for o in ordering):
            clauses.append(MODEL.name.asc())
        query = query.order_by(*clauses).offset(offset).limit(max_results + 1)
        async with self.engine.connect() as conn:
            rows = list((await conn.execute(query)).all())
            found = await self._models_json(conn, rows[:max_results])
        return found, offset_token(offset + max_results) if len(rows) > max_results else None

    async def set_registered_model_tag(self, name: object, key: object, value: object) -> None:
        checked = v.model_name(name)
        tag_key, tag_value = v.tag_key(key), v.tag_value(value)
        async with self.engine.begin() as conn:
            row = await self._model_row(conn, checked)
            statement = insert_statement(conn, s.registered_model_tags).values(
                registered_model_id=row.registered_model_id, key=tag_key, value=tag_value
            )
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["registered_model_id", "key"], set_={"value": statement.excluded.value}
                )
            )

    async def delete_registered_model_tag(self, name: object, key: object) -> None:
        checked = v.model_name(name)
        tag_key = v.tag_key(key)
        async with self.engine.begin() as conn:
            row = await self._model_row(conn, checked)
            await conn.execute(
                delete(s.registered_model_tags).where(
                    s.registered_model_tags.c.registered_model_id == row.registered_model_id,
                    s.registered_model_tags.c.key == tag_key,
                )
            )

    async def set_registered_model_alias(self, name: object, alias: object, version: object) -> None:
        checked = v.model_name(name)
        alias_name = v.alias_name(alias, setting=True)
        number = v.version_number(version)
        async with self.engine.begin() as conn:
            row = await self._version_row(conn, checked, number)
            statement = insert_statement(conn, s.registered_model_aliases).values(
                registered_model_id=row.registered_model_id, alias=alias_name, version=number
            )
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["registered_model_id", "alias"], set_={"version": statement.excluded.version}
                )
            )

    async def delete_registered_model_alias(self, name: object, alias: object) -> None:
        checked = v.model_name(name)
        alias_name = v.alias_name(alias)
        async with self.engine.begin() as conn:
            row = await self._model_row(conn, checked)
            await conn.execute(
                delete(s.registered_model_aliases).where(
                    s.registered_model_aliases.c.registered_model_id == row.registered_model_id,
                    s.registered_model_aliases.c.alias == alias_name,
                )
            )

    async def get_model_version_by_alias(self, name: object, alias: object) -> dict[str, Any]:
        checked = v.model_name(name)
        alias_name = v.alias_name(alias)
        async with self.engine.connect() as conn:
            row = await self._model_row(conn, checked)
            if alias_name.lower() == "latest":
                number = (
                    await conn.execute(
                        select(func.max(s.model_versions.c.version)).where(
                            s.model_versions.c.registered_model_id == row.registered_model_id
                        )
                    )
                ).scalar()
                if number is None:
                    raise NotFound(f"Latest version not found for model {checked}.")
            else:
                number = (
                    await conn.execute(
                        select(s.registered_model_aliases.c.version).where(
                            s.registered_model_aliases.c.registered_model_id == row.registered_model_id,
                            s.registered_model_aliases.c.alias == alias_name,
                        )
                    )
                ).scalar()
                if number is None:
                    raise InvalidValue(f"Registered model alias {alias_name} not found.")
            version = await self._version_row(conn, checked, number)
            return (await self._versions_json(conn, [version]))[0]

    async def get_latest_versions(self, name: object, stages: list[Any]) -> list[dict[str, Any]]:
        checked = v.model_name(name)
        wanted = {v.stage(item) for item in stages} if stages else None
        async with self.engine.connect() as conn:
            row = await self._model_row(conn, checked)
            return await self._versions_json(conn, await self._latest_rows(conn, [row.registered_model_id], wanted))
