"""The OpenAPI document: built from the route table, complete in every mode, served publicly."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from schemathesis.core.result import Err

from gateway.app import create_app
from gateway.http.access import ROUTE_ACCESS_KEY, Access
from gateway.http.openapi import ANY_METHOD, OPENAPI_PATH, OPERATIONS_KEY, build_document, route_path, split_path
from gateway.server import open_destination
from gateway.settings import Settings
from tests.gateway_process import RunningGateway

MODES: dict[str, dict[str, Any]] = {
    "proxied": {},
    "artifacts-only": {"artifacts_only": True},
    "no-proxy": {"serve_artifacts": False, "default_artifact_root": "s3://bucket/root"},
    "auth": {"auth": True},
}


def app_in(mode: str, tmp_path: Path) -> web.Application:
    settings = Settings(artifacts_destination=str(tmp_path / "mlartifacts"), **MODES[mode])
    return create_app(settings, open_destination(settings), b"k" * 32)


def declared_operations(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route in the table; a `*` route stands for each documented method."""
    operations = set()
    for route in app[ROUTE_ACCESS_KEY]:
        methods = ANY_METHOD if route.method == "*" else (route.method.lower(),)
        operations |= {(method, route_path(route)) for method in methods}
    return operations


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document["paths"].items() for method in item}


@pytest.mark.parametrize("mode", MODES)
def test_every_route_is_in_the_document_and_nothing_else(mode: str, tmp_path: Path) -> None:
    app = app_in(mode, tmp_path)
    document = build_document(app)
    declared, documented = declared_operations(app), documented_operations(document)
    assert declared - documented == set(), "routes missing from the document"
    assert documented - declared == set(), "operations in the document that no route serves"
    undescribed = [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation.get("x-undocumented")
    ]
    assert undescribed == [], "describe these routes in the openapi.py next to them (merged in gateway/app.py)"


@pytest.mark.parametrize("mode", MODES)
def test_the_document_is_valid_openapi(mode: str, tmp_path: Path) -> None:
    """Checked against the OpenAPI 3.0 meta-schema, and every operation loads."""
    schema = schemathesis.openapi.from_dict(build_document(app_in(mode, tmp_path)))
    schema.validate()
    problems = [str(result.err()) for result in schema.get_all_operations() if isinstance(result, Err)]
    assert problems == []


def test_every_description_belongs_to_a_route(tmp_path: Path) -> None:
    """A description whose route was removed or renamed is noticed, not left to rot. The descriptions are
    the ones the app factory hands to the document, in every mode (each with the UI)."""
    described, used = set(), set()
    for mode in MODES:
        app = app_in(mode, tmp_path)
        described |= set(app[OPERATIONS_KEY])
        for route in app[ROUTE_ACCESS_KEY]:
            family, below = split_path(route_path(route))
            used.add((family, route.method, below))
    assert described - used == set()


def test_security_follows_each_routes_access(tmp_path: Path) -> None:
    app = app_in("proxied", tmp_path)
    document = build_document(app)
    assert {"basicAuth", "bearerAuth", "partToken"} <= set(document["components"]["securitySchemes"])
    assert document["security"] == [{"basicAuth": []}, {"bearerAuth": []}]
    for route, access in app[ROUTE_ACCESS_KEY].items():
        operation = document["paths"][route_path(route)][route.method.lower()]
        assert operation["x-access"] == access.value
        if access is Access.PUBLIC:
            assert operation["security"] == []
        elif access is Access.SIGNED:
            assert operation["security"] == [{"partToken": []}]
        else:
            assert "security" not in operation  # the document-wide credentials
            assert {"401", "403"} <= set(operation["responses"])
    assert document["paths"]["/health"]["get"]["security"] == []
    assert document["paths"]["/api/2.0/mlflow-artifacts/mpu/part"]["put"]["x-access"] == "signed"


def test_request_schemas_name_what_the_handlers_read(tmp_path: Path) -> None:
    paths = build_document(app_in("proxied", tmp_path))["paths"]

    def body(path: str, method: str = "post") -> dict[str, Any]:
        schema: dict[str, Any] = paths[path][method]["requestBody"]["content"]["application/json"]["schema"]
        return schema

    create = body("/api/2.0/mlflow/experiments/create")
    assert create["required"] == ["name"] and {"artifact_location", "tags"} <= set(create["properties"])
    metric = body("/api/2.0/mlflow/runs/log-metric")
    assert set(metric["required"]) == {"key", "value", "timestamp"}
    assert {"run_id", "run_uuid", "timestamp", "step", "model_id"} <= set(metric["properties"])
    assert metric["anyOf"] == [{"required": ["run_id"]}, {"required": ["run_uuid"]}]
    complete = body("/api/2.0/mlflow-artifacts/mpu/complete/{path}")
    assert set(complete["required"]) == {"path", "upload_id", "parts"}
    history = {p["name"]: p for p in paths["/api/2.0/mlflow/metrics/get-history"]["get"]["parameters"]}
    assert history["metric_key"]["required"] and not history["run_id"]["required"]


def test_the_gateway_serves_its_document_without_credentials(gateway: RunningGateway) -> None:
    response = requests.get(f"{gateway.url}{OPENAPI_PATH}", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["paths"][OPENAPI_PATH]["get"]["security"] == []
    assert "/api/2.0/mlflow/runs/log-batch" in document["paths"]
    assert "/ajax-api/2.0/mlflow-artifacts/artifacts/{path}" in document["paths"]


SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.mark.parametrize("mode", MODES)
def test_document_matches_its_snapshot(mode: str, tmp_path: Path) -> None:
    """The document is what it was when the snapshot was taken: a refactor must not change it. A change
    that means to change the API regenerates the snapshots with UPDATE_SNAPSHOTS=1 and commits them."""
    served = json.dumps(build_document(app_in(mode, tmp_path)), indent=1) + "\n"
    snapshot = SNAPSHOTS / f"openapi-{mode}.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(served)
    assert served == snapshot.read_text(), f"/openapi.json changed in mode {mode}; see this test's docstring"
