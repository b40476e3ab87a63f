"""Registry webhooks: MLflow's API with its shapes and refusals, each registry event delivered once with
MLflow's payload and HMAC signature (on SQLite and PostgreSQL), deliveries that survive a gateway
restart, a receiver that never slows the API, and destinations the policy refuses at creation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from mlflow import MlflowClient

from tests.gateway_process import RunningGateway, run_gateway
from tests.postgres_server import store_uri_for

SECRET = "s3cret-for-signing"
MODEL_EVENTS = [
    {"entity": "REGISTERED_MODEL", "action": "CREATED"},
    {"entity": "MODEL_VERSION", "action": "CREATED"},
    {"entity": "MODEL_VERSION_TAG", "action": "SET"},
    {"entity": "MODEL_VERSION_TAG", "action": "DELETED"},
    {"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"},
    {"entity": "MODEL_VERSION_ALIAS", "action": "DELETED"},
]


@dataclass
class Delivery:
    headers: dict[str, str]
    body: str
    answered: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 in its own thread: records every post; answers 200, or 503 while
    `failing`, or holds each post until `release` is set while `holding`."""

    url: str = ""
    failing: bool = False
    holding: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    received: list[Delivery] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        if self.holding:
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 120)
        status = 503 if self.failing else 200
        with self.changed:
            self.received.append(Delivery(dict(request.headers), body, status))
            self.changed.notify_all()
        return web.Response(status=status, text="thanks" if status == 200 else "busy")

    def wait_for(self, done: Callable[[list[Delivery]], bool], what: str) -> list[Delivery]:
        with self.changed:
            assert self.changed.wait_for(lambda: done(self.received), timeout=90), f"{what}: {self.received}"
            return list(self.received)

    def acknowledged(self, entity: str, action: str) -> list[Delivery]:
        return [
            d for d in self.received if d.answered == 200 and d.json["entity"] == entity and d.json["action"] == action
        ]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port = runner.addresses[0][1]
        found.url = f"http://127.0.0.1:{port}/hook"
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait(30)
    yield found
    found.release.set()
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)


@pytest.fixture(autouse=True)
def fresh_receiver(receiver: Receiver) -> None:
    receiver.failing = receiver.holding = False
    receiver.release.set()
    with receiver.changed:
        receiver.received.clear()
    receiver.release.clear()


GATEWAY_FLAGS = ("--webhook-allowed-hosts", "127.0.0.1", "--webhook-timeout-seconds", "5")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tracking(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    workdir = tmp_path_factory.mktemp(f"webhooks-{request.param}")
    with run_gateway(workdir, "--backend-store-uri", store_uri_for(request, workdir), *GATEWAY_FLAGS) as running:
        yield running


def api(gateway: RunningGateway) -> str:
    return f"{gateway.url}/api/2.0/mlflow"


def create_webhook(gateway: RunningGateway, url: str, events: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    name = f"hook-{uuid.uuid4().hex[:8]}"
    response = requests.post(f"{api(gateway)}/webhooks", json={"name": name, "url": url, "events": events, **extra})
    assert response.status_code == 200, response.text
    return dict(response.json()["webhook"])


def register(gateway: RunningGateway, name: str) -> None:
    requests.post(f"{api(gateway)}/registered-models/create", json={"name": name}, timeout=10).raise_for_status()


def delete_webhook(gateway: RunningGateway, webhook_id: str) -> None:
    requests.delete(f"{api(gateway)}/webhooks/{webhook_id}", timeout=10).raise_for_status()


def verify_signature(delivery: Delivery) -> None:
    """As MLflow's docs tell a receiver to check it."""
    delivery_id, timestamp = delivery.headers["X-MLflow-Delivery-Id"], delivery.headers["X-MLflow-Timestamp"]
    signed = f"{delivery_id}.{timestamp}.{delivery.body}".encode()
    expected = "v1," + base64.b64encode(hmac.new(SECRET.encode(), signed, hashlib.sha256).digest()).decode()
    assert hmac.compare_digest(delivery.headers["X-MLflow-Signature"], expected)


def test_each_registry_event_arrives_once_with_mlflows_payload_and_signature(
    tracking: RunningGateway, receiver: Receiver
) -> None:
    hook = create_webhook(tracking, receiver.url, MODEL_EVENTS, secret=SECRET)
    client = MlflowClient(tracking.url, tracking.url)
    name = f"hooked-{uuid.uuid4().hex[:8]}"
    run = client.create_run(client.create_experiment(name))
    client.create_registered_model(name, tags={"team": "a"}, description="first")
    client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id, tags={"k": "v"})
    client.set_model_version_tag(name, "1", "stage", "qa")
    client.delete_model_version_tag(name, "1", "stage")
    client.set_registered_model_alias(name, "champion", "1")
    client.delete_registered_model_alias(name, "champion")
    client.set_registered_model_tag(name, "not-sent", "x")  # MLflow sends no event for a model's tags
    client.create_registered_model(f"{name}-marker")  # the last event: once it is in, the others are
    received = receiver.wait_for(
        lambda found: any(d.json["data"]["name"] == f"{name}-marker" for d in found), "the marker's delivery"
    )
    delete_webhook(tracking, hook["webhook_id"])
    by_event = {(d.json["entity"], d.json["action"]): d for d in received if d.json["data"]["name"] == name}
    assert len(received) == 7 and len({d.headers["X-MLflow-Delivery-Id"] for d in received}) == 7
    assert {key: d.json["data"] for key, d in by_event.items()} == {
        ("registered_model", "created"): {"name": name, "tags": {"team": "a"}, "description": "first"},
        ("model_version", "created"): {
            "name": name,
            "version": "1",
            "source": f"runs:/{run.info.run_id}/model",
            "run_id": run.info.run_id,
            "tags": {"k": "v"},
            "description": None,
        },
        ("model_version_tag", "set"): {"name": name, "version": "1", "key": "stage", "value": "qa"},
        ("model_version_tag", "deleted"): {"name": name, "version": "1", "key": "stage"},
        ("model_version_alias", "created"): {"name": name, "alias": "champion", "version": "1"},
        ("model_version_alias", "deleted"): {"name": name, "alias": "champion"},
    }
    for delivery in received:
        assert delivery.headers["Content-Type"] == "application/json"
        assert set(delivery.json) == {"entity", "action", "timestamp", "data"}
        verify_signature(delivery)


def test_prompt_events_are_sent_as_prompt_events(tracking: RunningGateway, receiver: Receiver) -> None:
    import mlflow

    events = [
        {"entity": "PROMPT", "action": "CREATED"},
        {"entity": "PROMPT_VERSION", "action": "CREATED"},
        {"entity": "PROMPT_TAG", "action": "SET"},
        {"entity": "REGISTERED_MODEL", "action": "CREATED"},
    ]
    hook = create_webhook(tracking, receiver.url, events)
    name = f"prompt_{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", tracking.url)
        mlflow.set_registry_uri(tracking.url)
        mlflow.genai.register_prompt(name, "Hello {{who}}", tags={"team": "p"})
        MlflowClient(tracking.url, tracking.url).set_prompt_tag(name, "reviewed", "yes")
        mlflow.set_registry_uri(None)

    def seen(found: list[Delivery]) -> set[tuple[str, str, str | None]]:
        return {(d.json["entity"], d.json["action"], d.json["data"].get("key")) for d in found}

    wanted = {("prompt", "created", None), ("prompt_version", "created", None), ("prompt_tag", "set", "reviewed")}
    received = receiver.wait_for(lambda found: wanted <= seen(found), "the prompt's events")
    delete_webhook(tracking, hook["webhook_id"])
    # the client may also tag the prompt with its experiment (`_mlflow_experiment_ids`), in either order
    shapes = {
        (d.json["entity"], d.json["action"]): d.json["data"]
        for d in received
        if d.json["data"].get("key") in (None, "reviewed")
    }
    assert shapes[("prompt", "created")]["name"] == name
    assert shapes[("prompt_version", "created")] == {
        "name": name,
        "version": "1",
        "template": "Hello {{who}}",
        "tags": {"team": "p"},
        "description": None,
    } | {"tags": shapes[("prompt_version", "created")]["tags"]}
    assert shapes[("prompt_tag", "set")] == {"name": name, "key": "reviewed", "value": "yes"}
    assert ("registered_model", "created") not in shapes


def test_a_slow_receiver_never_slows_the_api(tracking: RunningGateway, receiver: Receiver) -> None:
    hook = create_webhook(tracking, receiver.url, [{"entity": "REGISTERED_MODEL", "action": "CREATED"}])
    receiver.holding = True  # every post waits until the test lets it go
    names = [f"slow-{uuid.uuid4().hex[:8]}" for _ in range(3)]

    def ours(found: list[Delivery]) -> list[str]:  # an earlier test's delivery may still arrive here
        return [d.json["data"].get("name") for d in found if d.json.get("data", {}).get("name") in names]

    for name in names:  # each answers while the receiver still holds the deliveries
        response = requests.post(f"{api(tracking)}/registered-models/create", json={"name": name}, timeout=30)
        assert response.status_code == 200
    assert ours(receiver.received) == []
    receiver.release.set()
    received = receiver.wait_for(lambda found: len(ours(found)) == 3, "the three held deliveries")
    delete_webhook(tracking, hook["webhook_id"])
    assert sorted(ours(received)) == sorted(names)


def test_webhook_api_shapes_and_test_route(tracking: RunningGateway, receiver: Receiver) -> None:
    created = create_webhook(tracking, receiver.url, MODEL_EVENTS[2:4], secret=SECRET, description="tags of versions")
    webhook_id = created["webhook_id"]
    assert created == {
        "webhook_id": webhook_id,
        "name": created["name"],
        "description": "tags of versions",
        "url": receiver.url,
        "events": [
            {"entity": "MODEL_VERSION_TAG", "action": "DELETED"},
            {"entity": "MODEL_VERSION_TAG", "action": "SET"},
        ],
        "status": "ACTIVE",
        "creation_timestamp": created["creation_timestamp"],
        "last_updated_timestamp": created["creation_timestamp"],
    }
    assert requests.get(f"{api(tracking)}/webhooks/{webhook_id}", timeout=10).json() == {"webhook": created}
    listed = requests.get(f"{api(tracking)}/webhooks", timeout=10).json()["webhooks"]
    assert created in listed
    patched = requests.patch(
        f"{api(tracking)}/webhooks/{webhook_id}", json={"status": "DISABLED", "description": ""}, timeout=10
    ).json()["webhook"]
    assert patched["status"] == "DISABLED" and "description" not in patched
    tested = requests.post(f"{api(tracking)}/webhooks/{webhook_id}/test", json={}, timeout=30).json()
    assert tested == {"result": {"success": True, "response_status": 200, "response_body": "thanks"}}
    (example,) = receiver.received
    assert example.json["entity"] == "model_version_tag" and example.json["action"] == "deleted"
    assert example.json["data"] == {"name": "example_model", "version": "1", "key": "example_key"}
    verify_signature(example)
    chosen = {"event": {"entity": "MODEL_VERSION", "action": "CREATED"}}
    requests.post(f"{api(tracking)}/webhooks/{webhook_id}/test", json=chosen, timeout=30).raise_for_status()
    assert receiver.received[-1].json["data"]["source"] == "models:/123"
    assert requests.delete(f"{api(tracking)}/webhooks/{webhook_id}", timeout=10).json() == {}
    gone = requests.get(f"{api(tracking)}/webhooks/{webhook_id}", timeout=10)
    assert (gone.status_code, gone.json()["message"]) == (404, f"Webhook with ID {webhook_id} not found.")


def test_a_disabled_webhook_gets_nothing(tracking: RunningGateway, receiver: Receiver) -> None:
    off = create_webhook(tracking, receiver.url, MODEL_EVENTS[:1], status="DISABLED")
    on = create_webhook(tracking, receiver.url, MODEL_EVENTS[:1])
    name = f"once-{uuid.uuid4().hex[:8]}"
    requests.post(f"{api(tracking)}/registered-models/create", json={"name": name}, timeout=10).raise_for_status()
    (delivery,) = receiver.wait_for(lambda found: len(found) >= 1, "the active webhook's delivery")
    for hook in (off, on):
        delete_webhook(tracking, hook["webhook_id"])
    assert delivery.json["data"]["name"] == name


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Missing value for required parameter 'name'"),
        ({"name": "h"}, "Missing value for required parameter 'url'"),
        (
            {"name": "bad name", "url": "https://example.com/h", "events": MODEL_EVENTS},
            "Webhook name 'bad name' is invalid",
        ),
        ({"name": "h", "url": "ftp://example.com/h", "events": MODEL_EVENTS}, "Invalid webhook URL scheme: 'ftp'"),
        ({"name": "h", "url": "https://example.com/h", "events": []}, "Webhook events must be a non-empty list"),
        (
            {
                "name": "h",
                "url": "https://example.com/h",
                "events": [{"entity": "REGISTERED_MODEL", "action": "DELETED"}],
            },
            "Invalid action 'deleted' for entity 'registered_model'",
        ),
        ({"name": "h", "url": "https://example.com/h", "events": [{"entity": "NOPE", "action": "CREATED"}]}, "entity"),
        (
            {"name": "h", "url": "https://example.com/h", "events": MODEL_EVENTS, "status": "WHAT"},
            "Invalid webhook status",
        ),
        # Destinations: only public https hosts, or those the operator allows (here 127.0.0.1 only).
        ({"name": "h", "url": "http://127.0.0.2/h", "events": MODEL_EVENTS}, "Invalid webhook URL scheme: 'http'"),
        ({"name": "h", "url": "https://127.0.0.2/h", "events": MODEL_EVENTS}, "loopback, private, link-local"),
        ({"name": "h", "url": "https://10.1.2.3/h", "events": MODEL_EVENTS}, "loopback, private, link-local"),
        ({"name": "h", "url": "https://169.254.169.254/latest", "events": MODEL_EVENTS}, "resolves to 169.254.169.254"),
        ({"name": "h", "url": "https://[::1]/h", "events": MODEL_EVENTS}, "loopback, private, link-local"),
        ({"name": "h", "url": "https://[::ffff:10.0.0.1]/h", "events": MODEL_EVENTS}, "loopback, private, link-local"),
        ({"name": "h", "url": "https://[fd00:ec2::254]/h", "events": MODEL_EVENTS}, "loopback, private, link-local"),
        ({"name": "h", "url": "https://user:pw@example.com/h", "events": MODEL_EVENTS}, "must not carry credentials"),
    ],
)
def test_bad_webhooks_are_refused_and_nothing_is_written(
    tracking: RunningGateway, body: dict[str, Any], message: str
) -> None:
    before = requests.get(f"{api(tracking)}/webhooks", timeout=10).json()
    response = requests.post(f"{api(tracking)}/webhooks", json=body, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in response.json()["message"]
    assert requests.get(f"{api(tracking)}/webhooks", timeout=10).json() == before


def test_unknown_webhooks_are_404_and_updates_are_checked(tracking: RunningGateway, receiver: Receiver) -> None:
    for method, path in [("GET", "nope"), ("PATCH", "nope"), ("DELETE", "nope"), ("POST", "nope/test")]:
        response = requests.request(method, f"{api(tracking)}/webhooks/{path}", json={}, timeout=10)
        assert (response.status_code, response.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    hook = create_webhook(tracking, receiver.url, MODEL_EVENTS[:1])
    refused = requests.patch(
        f"{api(tracking)}/webhooks/{hook['webhook_id']}", json={"url": "https://10.0.0.1/h"}, timeout=10
    )
    assert refused.status_code == 400
    assert requests.get(f"{api(tracking)}/webhooks/{hook['webhook_id']}", timeout=10).json()["webhook"] == hook
    delete_webhook(tracking, hook["webhook_id"])


def test_pending_deliveries_survive_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    store = f"sqlite:///{tmp_path / 'mlruns.db'}"
    receiver.failing = True
    with run_gateway(tmp_path, "--backend-store-uri", store, *GATEWAY_FLAGS) as first:
        create_webhook(first, receiver.url, MODEL_EVENTS[:1])
        for name in ("kept-1", "kept-2"):
            requests.post(f"{api(first)}/registered-models/create", json={"name": name}, timeout=10).raise_for_status()
        receiver.wait_for(lambda found: len(found) >= 2, "a first, refused attempt of each")
    receiver.failing = False
    with run_gateway(tmp_path, "--backend-store-uri", store, *GATEWAY_FLAGS):
        receiver.wait_for(
            lambda found: len(receiver.acknowledged("registered_model", "created")) == 2, "both deliveries, accepted"
        )
        accepted = receiver.acknowledged("registered_model", "created")
        assert sorted(d.json["data"]["name"] for d in accepted) == ["kept-1", "kept-2"]
        refused = [d for d in receiver.received if d.answered == 503]
        # Retries keep the delivery's id, so a receiver can tell a repeat from a new event.
        assert {d.headers["X-MLflow-Delivery-Id"] for d in accepted} == {
            d.headers["X-MLflow-Delivery-Id"] for d in refused
        }


def test_with_several_workers_each_delivery_is_posted_once(tmp_path: Path, receiver: Receiver) -> None:
    """Two worker processes share the queue: every event reaches the receiver, none twice."""
    store = f"sqlite:///{tmp_path / 'mlruns.db'}"
    with run_gateway(tmp_path, "--backend-store-uri", store, "--workers", "2", *GATEWAY_FLAGS) as gateway:
        hook = create_webhook(gateway, receiver.url, MODEL_EVENTS[:1])
        names = [f"shared-{index}" for index in range(12)]
        for name in names:  # spread over both workers by the kernel's accept balancing
            requests.post(
                f"{api(gateway)}/registered-models/create", json={"name": name}, timeout=10
            ).raise_for_status()
        requests.post(
            f"{api(gateway)}/registered-models/create", json={"name": "marker"}, timeout=10
        ).raise_for_status()
        received = receiver.wait_for(lambda found: len(found) >= 13, "all thirteen deliveries")
        # One more round trip through both workers' queues before counting: nothing arrives twice.
        register(gateway, "last")
        received = receiver.wait_for(lambda found: any(d.json["data"]["name"] == "last" for d in found), "the last")
        delete_webhook(gateway, hook["webhook_id"])
    assert sorted(d.json["data"]["name"] for d in received) == sorted([*names, "marker", "last"])
    assert len({d.headers["X-MLflow-Delivery-Id"] for d in received}) == len(received)
