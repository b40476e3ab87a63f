"""Webhooks and their delivery queue.

A registry change puts one row per listening webhook into `webhook_deliveries` (`enqueue`); a
worker task in each gateway process claims due rows (`claim_due`: a compare-and-set on
`claimed_until`, so with several processes each row is claimed by one), posts them, and then deletes
the row, schedules a retry, or keeps it as 'failed'. A claim is a lease: rows of a process that died
mid-delivery are claimed again once it expires, so a delivery is made at least once.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, exists, insert, or_, select, update

from gateway.registry.store import values as v
from gateway.registry.store.base import IS_PROMPT_TAG, MODEL, RegistryBase
from gateway.store import schema as s
from gateway.store.errors import InvalidValue, NotFound
from gateway.store.pages import offset_token, page_offset

HOOK = s.webhooks.c
EVENT = s.webhook_events.c
DELIVERY = s.webhook_deliveries.c
STATUSES = ("ACTIVE", "DISABLED")
PENDING, FAILED = "pending", "failed"
MAX_WEBHOOKS = 1000
_NAME = re.compile(r"^(?=.{1,63}$)[a-z0-9]([a-z0-9._-]*[a-z0-9])?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this process holds until `claimed_until`, with what it needs to send it."""

    delivery_id: str
    url: str
    secret: str | None
    payload: str
    attempts: int


def webhook_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidValue(
            f"Webhook name {name!r} is invalid. It must start and end with a letter or digit, be less than 63 "
            "characters long, and contain only letters, digits, dots (.), underscores (_), and hyphens (-)."
        )
    return name


def webhook_status(status: object) -> str:
    if not isinstance(status, str) or status.upper() not in STATUSES:
        raise InvalidValue(f"Invalid webhook status: {status!r}. Valid statuses are: {list(STATUSES)}")
    return status.upper()


def _not_found(webhook_id: str) -> NotFound:
    return NotFound(f"Webhook with ID {webhook_id} not found.")


class WebhookStore(RegistryBase):
    async def create_webhook(
        self,
        name: str,
        url: str,
        events: list[tuple[str, str]],
        description: str | None,
        secret: str | None,
        status: str | None,
    ) -> dict[str, Any]:
        webhook_id, now = str(uuid.uuid4()), v.now_ms()
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(s.webhooks).values(
                    webhook_id=webhook_id,
                    name=webhook_name(name),
                    description=description,
                    url=url,
                    secret=secret,
                    status=webhook_status(status) if status else "ACTIVE",
                    creation_time=now,
                    last_updated_time=now,
                )
            )
            await conn.execute(
                insert(s.webhook_events),
                [{"webhook_id": webhook_id, "entity": entity, "action": action} for entity, action in events],
            )
            return (await self._webhooks_json(conn, [webhook_id]))[0]

    async def get_webhook(self, webhook_id: str) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            found = await self._webhooks_json(conn, [webhook_id])
        if not found:
            raise _not_found(webhook_id)
        return found[0]

    async def webhook_secret(self, webhook_id: str) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(HOOK.secret).where(HOOK.webhook_id == webhook_id))).scalar_one_or_none()

    async def list_webhooks(self, max_results: int, token: object) -> tuple[list[dict[str, Any]], str | None]:
        if not 1 <= max_results <= MAX_WEBHOOKS:
            raise InvalidValue(f"max_results must be between 1 and {MAX_WEBHOOKS}.")
        offset = page_offset(token)
        query = (
            select(HOOK.webhook_id)
            .where(HOOK.deleted_time.is_(None))
            .order_by(HOOK.creation_time.desc(), HOOK.webhook_id)
            .offset(offset)
            .limit(max_results + 1)
        )
        async with self.engine.connect() as conn:
            ids = list((await conn.execute(query)).scalars())
            found = await self._webhooks_json(conn, ids[:max_results])
        return found, offset_token(offset + max_results) if len(ids) > max_results else None

    async def update_webhook(
        self, webhook_id: str, changes: dict[str, Any], events: list[tuple[str, str]] | None
    ) -> dict[str, Any]:
        if "name" in changes:
            webhook_name(changes["name"])
        if "status" in changes:
            changes["status"] = webhook_status(changes["status"])
        async with self.engine.begin() as conn:
            updated = await conn.execute(
                update(s.webhooks)
                .where(HOOK.webhook_id == webhook_id, HOOK.deleted_time.is_(None))
                .values(**changes, last_updated_time=v.now_ms())
            )
            if updated.rowcount == 0:
                raise _not_found(webhook_id)
            if events is not None:
                await conn.execute(delete(s.webhook_events).where(EVENT.webhook_id == webhook_id))
                await conn.execute(
                    insert(s.webhook_events),
                    [{"webhook_id": webhook_id, "entity": entity, "action": action} for entity, action in events],
                )
            return (await self._webhooks_json(conn, [webhook_id]))[0]

    async def delete_webhook(self, webhook_id: str) -> None:
        """Marks the webhook deleted (as MLflow) and drops its pending deliveries."""
        now = v.now_ms()
        async with self.engine.begin() as conn:
            deleted = await conn.execute(
                update(s.webhooks)
                .where(HOOK.webhook_id == webhook_id, HOOK.deleted_time.is_(None))
                .values(deleted_time=now, last_updated_time=now)
            )
            if deleted.rowcount == 0:
                raise _not_found(webhook_id)
            await conn.execute(delete(s.webhook_deliveries).where(DELIVERY.webhook_id == webhook_id))

    async def _webhooks_json(self, conn: Any, ids: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        rows = {
            row.webhook_id: row
            for row in await conn.execute(
                select(s.webhooks).where(HOOK.webhook_id.in_(ids), HOOK.deleted_time.is_(None))
            )
        }
        events: dict[str, list[dict[str, str]]] = {}
        for event in await conn.execute(
            select(s.webhook_events).where(EVENT.webhook_id.in_(ids)).order_by(EVENT.entity, EVENT.action)
        ):
            events.setdefault(event.webhook_id, []).append(
                {"entity": event.entity.upper(), "action": event.action.upper()}
            )
        found = []
        for webhook_id in ids:
            if (row := rows.get(webhook_id)) is None:
                continue
            body: dict[str, Any] = {"webhook_id": row.webhook_id, "name": row.name}
            if row.description:
                body["description"] = row.description
            body.update(
                url=row.url,
                events=events.get(webhook_id, []),
                status=row.status,
                creation_timestamp=row.creation_time,
                last_updated_timestamp=row.last_updated_time,
            )
            found.append(body)
        return found

    # -- the queue ---------------------------------------------------------------------------------

    async def has_active_webhooks(self) -> bool:
        async with self.engine.connect() as conn:
            query = select(HOOK.webhook_id).where(HOOK.deleted_time.is_(None), HOOK.status == "ACTIVE").limit(1)
            return (await conn.execute(query)).first() is not None

    async def is_prompt(self, name: str) -> bool:
        tag = s.registered_model_tags.c
        query = select(
            exists().where(
                and_(
                    MODEL.name == name,
                    tag.registered_model_id == MODEL.registered_model_id,
                    tag.key == IS_PROMPT_TAG,
                    tag.value == "true",
                )
            )
        )
        async with self.engine.connect() as conn:
            return bool((await conn.execute(query)).scalar())

    async def enqueue(self, entity: str, action: str, payload: str) -> int:
        """A delivery of `payload` for every active webhook listening to the event; how many."""
        now = v.now_ms()
        async with self.engine.begin() as conn:
            listening = list(
                (
                    await conn.execute(
                        select(HOOK.webhook_id)
                        .join(s.webhook_events, EVENT.webhook_id == HOOK.webhook_id)
                        .where(
                            HOOK.deleted_time.is_(None),
                            HOOK.status == "ACTIVE",
                            EVENT.entity == entity,
                            EVENT.action == action,
                        )
                    )
                ).scalars()
            )
            if listening:
                await conn.execute(
                    insert(s.webhook_deliveries),
                    [
                        {
                            "delivery_id": str(uuid.uuid4()),
                            "webhook_id": webhook_id,
                            "payload": payload,
                            "state": PENDING,
                            "attempts": 0,
                            "next_attempt_time": now,
                            "claimed_until": None,
                            "creation_time": now,
                        }
                        for webhook_id in listening
                    ],
                )
        return len(listening)

    async def claim_due(self, lease_ms: int, limit: int) -> list[Claimed]:
        """Up to `limit` due deliveries, each claimed for this caller alone until the lease ends."""
        now = v.now_ms()
        free = or_(DELIVERY.claimed_until.is_(None), DELIVERY.claimed_until < now)
        async with self.engine.connect() as conn:
            candidates = list(
                await conn.execute(
                    select(DELIVERY.delivery_id, DELIVERY.payload, DELIVERY.attempts, HOOK.url, HOOK.secret)
                    .join(s.webhooks, HOOK.webhook_id == DELIVERY.webhook_id)
                    .where(DELIVERY.state == PENDING, DELIVERY.next_attempt_time <= now, free)
                    .order_by(DELIVERY.next_attempt_time)
                    .limit(limit)
                )
            )
        claimed = []
        for row in candidates:
            async with self.engine.begin() as conn:
                taken = await conn.execute(
                    update(s.webhook_deliveries)
                    .where(DELIVERY.delivery_id == row.delivery_id, DELIVERY.state == PENDING, free)
                    .values(claimed_until=now + lease_ms, attempts=DELIVERY.attempts + 1)
                )
            if taken.rowcount == 1:
                claimed.append(Claimed(row.delivery_id, row.url, row.secret, row.payload, row.attempts + 1))
        return claimed

    async def next_due(self) -> int | None:
        """When the earliest pending delivery is due (ms), or None when none is pending."""
        async with self.engine.connect() as conn:
            query = select(DELIVERY.next_attempt_time).where(DELIVERY.state == PENDING)
            return (await conn.execute(query.order_by(DELIVERY.next_attempt_time).limit(1))).scalar()

    async def delivered(self, delivery_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(s.webhook_deliveries).where(DELIVERY.delivery_id == delivery_id))

    async def retry_later(self, delivery_id: str, delay_ms: int, error: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(s.webhook_deliveries)
                .where(DELIVERY.delivery_id == delivery_id)
                .values(next_attempt_time=v.now_ms() + delay_ms, claimed_until=None, last_error=error[:2000])
            )

    async def failed(self, delivery_id: str, error: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(s.webhook_deliveries)
                .where(DELIVERY.delivery_id == delivery_id)
                .values(state=FAILED, claimed_until=None, last_error=error[:2000])
            )

    async def release(self, delivery_ids: list[str]) -> None:
        """Give back claims this process will not finish (it is stopping): another may take them now."""
        if delivery_ids:
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(s.webhook_deliveries)
                    .where(DELIVERY.delivery_id.in_(delivery_ids), DELIVERY.state == PENDING)
                    .values(claimed_until=None, attempts=DELIVERY.attempts - 1)
                )
