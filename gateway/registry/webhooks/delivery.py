"""Posting webhook deliveries: a worker task per gateway process drains the queue in the database.

An API call only adds rows to the queue (`Deliveries.notify`) and wakes this process's worker; the
post happens after the answer, so a slow or dead receiver never delays the call. Each delivery is
signed as MLflow signs it (`X-MLflow-Signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`
with the webhook's secret), keeps its `X-MLflow-Delivery-Id` across retries (a receiver can drop
a repeat), and is retried with exponential backoff on a network error, a timeout, 408, 429 or 5xx.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from gateway.logs import event
from gateway.registry.store import Claimed, RegistryStore
from gateway.registry.webhooks.destinations import (
    CheckingResolver,
    DestinationPolicy,
    RefusedDestination,
    ip_literal,
    resolve,
)
from gateway.registry.webhooks.events import Event, delivery_body

SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_ID_HEADER = (
    "X-MLflow-Signature",
    "X-MLflow-Timestamp",
    "X-MLflow-Delivery-Id",
)
MAX_ATTEMPTS = 12
"""Attempts before a delivery is kept as failed: with the backoff below, about 25 minutes of trying."""
MAX_BACKOFF_SECONDS = 300.0
POLL_SECONDS = 2.0
"""How often a worker looks for deliveries another process queued (its own wake it at once)."""
BATCH = 16
RESPONSE_BODY_LIMIT = 64 << 10
RETRIED_STATUSES = frozenset({408, 429})


def signature(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: str


async def post(
    policy: DestinationPolicy, seconds: float, url: str, secret: str | None, delivery_id: str, body: str
) -> Answer:
    """POST `body` to `url` once, checked against `policy` on the address it connects to.

    Raises `RefusedDestination` for a destination the policy refuses, `aiohttp.ClientError` or
    `TimeoutError` when no answer came. Redirects are not followed and no proxy is used.
    """
    host, port = policy.check_url(url)
    if ip_literal(host) is not None:
        policy.check_addresses(url, host, await resolve(host, port))  # aiohttp resolves no IP literal
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", DELIVERY_ID_HEADER: delivery_id, TIMESTAMP_HEADER: timestamp}
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, delivery_id, timestamp, body)
    connector = aiohttp.TCPConnector(resolver=CheckingResolver(policy, url), use_dns_cache=False, force_close=True)
    async with (
        aiohttp.ClientSession(
            connector=connector, trust_env=False, timeout=aiohttp.ClientTimeout(total=seconds)
        ) as session,
        session.post(url, data=body.encode(), headers=headers, allow_redirects=False) as response,
    ):
        text = (await response.content.read(RESPONSE_BODY_LIMIT)).decode(errors="replace")
        return Answer(response.status, text)


class Deliveries:
    """This process's side of the queue: adding deliveries, and the worker that posts them."""

    def __init__(self, store: RegistryStore, policy: DestinationPolicy, timeout: float) -> None:
        self.store = store
        self.policy = policy
        self.timeout = timeout
        self._wake = asyncio.Event()
        self._held: set[str] = set()

    async def notify(
        self, name: str, model: Event | None, prompt: Event | None, data: dict[str, Any], *, is_prompt: bool | None
    ) -> None:
        """Queue `model`'s event, or `prompt`'s when `name` is a prompt (looked up when `is_prompt` is
        None), for every webhook listening to it; nothing is looked up while no webhook is active."""
        if not await self.store.has_active_webhooks():
            return
        if is_prompt is None:
            is_prompt = await self.store.is_prompt(name)
        chosen = prompt if is_prompt else model
        if chosen is not None and await self.store.enqueue(chosen.entity, chosen.action, delivery_body(chosen, data)):
            self._wake.set()

    async def send_test(self, url: str, secret: str | None, chosen: Event, data: dict[str, Any]) -> dict[str, Any]:
        """MLflow's `webhooks/<id>/test`: one post of an example payload, its outcome as MLflow reports it."""
        try:
            answer = await post(self.policy, self.timeout, url, secret, str(uuid.uuid4()), delivery_body(chosen, data))
        except (RefusedDestination, aiohttp.ClientError, TimeoutError, OSError) as exc:
            return {"success": False, "error_message": f"Failed to test webhook: {exc!r}"}
        result: dict[str, Any] = {"success": answer.status < 400, "response_status": answer.status}
        if answer.body:
            result["response_body"] = answer.body
        return result

    async def run(self) -> None:
        """Claim due deliveries and post them, until cancelled; claims in hand are given back then."""
        lease_ms = int((self.timeout + 30) * 1000)
        try:
            while True:
                try:
                    claimed = await self.store.claim_due(lease_ms, BATCH)
                    if claimed:
                        self._held.update(c.delivery_id for c in claimed)
                        await asyncio.gather(*(self._deliver(c) for c in claimed))
                        continue
                    due = await self.store.next_due()
                except Exception:  # the database is away for a moment: try again later
                    event("webhook queue unavailable", logging.WARNING, exc_info=True)
                    due = None
                wait = POLL_SECONDS if due is None else min(POLL_SECONDS, max(0.05, due / 1000 - time.time()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                self._wake.clear()
        finally:
            if self._held:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.store.release(sorted(self._held)))

    async def _deliver(self, delivery: Claimed) -> None:
        host = urlsplit(delivery.url).hostname
        try:
            answer = await post(
                self.policy, self.timeout, delivery.url, delivery.secret, delivery.delivery_id, delivery.payload
            )
        except RefusedDestination as exc:
            await self.store.failed(delivery.delivery_id, str(exc))
            event("webhook delivery refused", logging.WARNING, delivery_id=delivery.delivery_id, reason=str(exc))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            await self._again(delivery, f"{type(exc).__name__}: {exc}", host)
        else:
            if answer.status < 400:
                await self.store.delivered(delivery.delivery_id)
            elif answer.status in RETRIED_STATUSES or answer.status >= 500:
                await self._again(delivery, f"HTTP {answer.status}", host)
            else:
                await self.store.failed(delivery.delivery_id, f"HTTP {answer.status}")
                event("webhook delivery refused by its receiver", logging.WARNING, status=answer.status, host=host)
        self._held.discard(delivery.delivery_id)

    async def _again(self, delivery: Claimed, error: str, host: str | None) -> None:
        if delivery.attempts >= MAX_ATTEMPTS:
            await self.store.failed(delivery.delivery_id, error)
            event("webhook delivery given up", logging.WARNING, delivery_id=delivery.delivery_id, error=error)
            return
        delay = min(MAX_BACKOFF_SECONDS, 2.0 ** (delivery.attempts - 1))
        await self.store.retry_later(delivery.delivery_id, int(delay * 1000), error)
        event("webhook delivery will be retried", host=host, attempt=delivery.attempts, error=error)


DELIVERIES_KEY = web.AppKey("webhook_deliveries", Deliveries)


async def deliveries_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Start this process's delivery worker once the store is up; stop it (giving back its claims) at the end."""
    from gateway.http.app_keys import REGISTRY_STORE_KEY, SETTINGS_KEY

    settings = app[SETTINGS_KEY]
    deliveries = Deliveries(
        app[REGISTRY_STORE_KEY],
        DestinationPolicy.parse(settings.webhook_allowed_hosts),
        settings.webhook_timeout_seconds,
    )
    app[DELIVERIES_KEY] = deliveries
    worker = asyncio.create_task(deliveries.run())
    yield
    worker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await worker
