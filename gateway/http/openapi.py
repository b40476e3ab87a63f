"""The gateway's own OpenAPI 3 document, built from the live route table and served at `/openapi.json`.

The list of paths and methods is never written by hand: it is read from `app[ROUTE_ACCESS_KEY]`,
the table every route is added to (`gateway.http.access.add_route`), so the document describes exactly
the routes this server's mode serves, and a new route shows up in it at once. What is written by hand
is each operation's description: its parameters, request body and responses, keyed by API family,
method and path below the API prefix (both `/api/...` and `/ajax-api/...` share one description). A
route without a description still appears, marked `x-undocumented`, and `tests/http/test_openapi.py`
fails on it. Request schemas follow what the handlers accept (field names, JSON types, which are
required); response schemas are deliberately loose: the fields MLflow's clients read, extra fields
allowed.

The descriptions live next to their routes, in each capability's `openapi.py` (the meta routes' in
`gateway.http.meta_openapi`). This package imports no capability, so they are handed in: the app
factory, the one module that knows every capability and the UI, merges them and passes them to
`add_routes`, which keeps them in the app for `build_document`. One merge in one place, plain data,
and no capability's `add_routes` has to know about the document.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from gateway import __version__
from gateway.http.access import ROUTE_ACCESS_KEY, Access, add_route
from gateway.http.openapi_schemas import (
    CLIENT_ERROR,
    EMPTY_SCHEMA,
    ERROR_SCHEMA,
    FILE_INFO_SCHEMA,
    STRING,
    Operation,
    Operations,
    Schema,
    error,
)
from gateway.http.origin import STATE_CHANGING
from gateway.http.prefixes import ARTIFACTS_PREFIXES, SERVER_INFO_PREFIXES, TRACKING_PREFIXES

OPENAPI_PATH = "/openapi.json"
ANY_METHOD = ("get", "put", "post", "patch", "delete", "head")
"""The methods a `*` route (a disabled mode's catch-all) is documented with."""

OPERATIONS_KEY = web.AppKey("openapi_operations", Operations)
"""Every route's description, merged by the app factory (`add_routes`)."""
SCHEMAS_KEY = web.AppKey("openapi_schemas", dict[str, Schema])
"""The capabilities' component schemas, placed between the shared ones (`build_document`)."""

SECURITY_SCHEMES: dict[str, Schema] = {
    "basicAuth": {"type": "http", "scheme": "basic", "description": "MLFLOW_TRACKING_USERNAME / _PASSWORD"},
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "MLFLOW_TRACKING_TOKEN"},
    "partToken": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "The gateway-signed, expiring grant in a part URL that mpu/create handed out",
    },
}
CREDENTIALS: list[dict[str, list[str]]] = [{"basicAuth": []}, {"bearerAuth": []}]

FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tracking", TRACKING_PREFIXES),
    ("artifacts", ARTIFACTS_PREFIXES),
    ("server-info", SERVER_INFO_PREFIXES),
)


def split_path(path: str) -> tuple[str, str]:
    """(API family, path below its prefix) of a route's path; ("", path) outside the prefixed APIs."""
    for family, prefixes in FAMILIES:
        for prefix in prefixes:
            if path.startswith(prefix + "/") or path == prefix:
                return family, path[len(prefix) :]
    return "", path


def route_path(route: web.AbstractRoute) -> str:
    """The route's path as an OpenAPI template: `{name}` for each variable, regexes dropped."""
    assert route.resource is not None
    return route.resource.canonical


def _operation_id(method: str, path: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", f"{method} {path}").strip("_").lower()


def _undocumented(method: str, path: str) -> Operation:
    return {
        "summary": f"{method} {path} (not described yet)",
        "x-undocumented": True,
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": STRING} for name in re.findall(r"{(\w+)}", path)
        ],
        "responses": {"200": {"description": "OK"}, "4XX": CLIENT_ERROR},
    }


CROSS_SITE = "a browser sent it from a page of another site (Sec-Fetch-Site or Origin; gateway/http/origin.py)"


def _with_access(operation: Operation, access: Access, method: str, path: str) -> Operation:
    described = {**operation, "operationId": _operation_id(method, path), "x-access": access.value}
    changes_state = method.upper() in STATE_CHANGING
    if access is Access.PUBLIC:
        described["security"] = []
    elif access is Access.SIGNED:
        described["security"] = [{"partToken": []}]
    else:  # the document-wide credentials; with auth on, a missing or wrong one is 401, too little right 403
        refused = "The credential may not do this (with authentication on)"
        described["responses"] = {
            **operation["responses"],
            "401": error("No valid credential (with authentication on)"),
            "403": error(f"{refused}, or {CROSS_SITE}" if changes_state else refused),
        }
    if changes_state and "403" not in described["responses"]:
        described["responses"] = {**described["responses"], "403": error(f"Refused: {CROSS_SITE}")}
    return described


def build_document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.0 document of every route in `app`'s route table."""
    paths: dict[str, dict[str, Operation]] = {}
    operations = app[OPERATIONS_KEY]
    for route, access in app[ROUTE_ACCESS_KEY].items():
        path = route_path(route)
        family, below = split_path(path)
        operation = operations.get((family, route.method, below))
        methods = ANY_METHOD if route.method == "*" else (route.method.lower(),)
        for method in methods:
            described = operation or _undocumented(method.upper(), path)
            paths.setdefault(path, {})[method] = _with_access(described, access, method, path)
    # The published order, part of the document's bytes: the shared Error first, FileInfo and Empty last.
    capabilities = app[SCHEMAS_KEY]
    schemas = {"Error": ERROR_SCHEMA, **capabilities, "FileInfo": FILE_INFO_SCHEMA, "Empty": EMPTY_SCHEMA}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "artifact-gateway",
            "version": __version__,
            "description": (
                "MLflow's tracking REST API and artifact proxy (mlflow-artifacts), wire-compatible with "
                "`mlflow server`, as served by this gateway in its current mode. Every error is "
                '`{"error_code": ..., "message": ..., "sqlstate": ..., "error_class": ...}` as MLflow 3.17 answers it '
                "(the last two where MLflow classifies the code). Both /api/... and /ajax-api/... prefixes are served."
            ),
        },
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
        "security": CREDENTIALS,
        "tags": [
            {"name": "tracking", "description": "Experiments, runs, metrics, params, tags, logged models"},
            {"name": "registry", "description": "The model registry: registered models, versions, tags, aliases"},
            {"name": "artifacts", "description": "The mlflow-artifacts proxy: files under the destination"},
            {"name": "multipart", "description": "MLflow's multipart upload API"},
            {"name": "server", "description": "Health, version, capabilities, this document"},
            {"name": "ui", "description": "The web UI's HTML pages (server-rendered; same auth as the API)"},
        ],
    }


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(build_document(request.app))


def add_routes(app: web.Application, operations: Operations, schemas: dict[str, Schema]) -> None:
    """Serve the document, describing routes with `operations` and adding the capabilities' `schemas`."""
    app[OPERATIONS_KEY] = operations
    app[SCHEMAS_KEY] = schemas
    add_route(app, "GET", OPENAPI_PATH, openapi_document, Access.PUBLIC)
