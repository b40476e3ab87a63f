"""The OpenAPI descriptions of the HTTP kit's own routes: health, version, server-info, metrics, the
document itself, and the catch-all of an API a mode disables (see `gateway.http.openapi`)."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi import OPENAPI_PATH
from gateway.http.openapi_schemas import (
    ARTIFACT_PATH,
    CLIENT_ERROR,
    STRING,
    Operation,
    Operations,
    error,
    json_ok,
    obj,
    op,
)

TEXT_OK = {"description": "OK", "content": {"text/plain": {"schema": STRING}}}
SERVER_INFO_OK = json_ok(
    obj(
        {
            "store_type": STRING,
            "multipart_uploads_enabled": {"type": "boolean"},
            "multipart_downloads_enabled": {"type": "boolean"},
            "artifact_gateway": obj({"version": STRING, "mode": STRING, "mlflow_protocol": STRING}),
        },
        ("multipart_uploads_enabled", "multipart_downloads_enabled"),
    )
)
READY_CHECK = {"type": "string", "enum": ["ok", "unavailable"]}
READY_OK = json_ok(
    obj(
        {
            "status": READY_CHECK,
            "database": READY_CHECK,
            "auth_database": READY_CHECK,
            "artifacts": READY_CHECK,
        }
    )
)
READY_503 = {
    **READY_OK,
    "description": "A dependency does not answer; the body says which, the server's log says why",
}


def meta(summary: str, ok: dict[str, Any], more: dict[str, Any] | None = None) -> Operation:
    return op(summary, ok, tag="server", more_responses=more or {})


def head_of(operation: Operation) -> Operation:
    """The HEAD twin of a GET: the same responses without bodies."""
    head = {key: value for key, value in operation.items() if key != "responses"}
    head["summary"] = f"{operation['summary']} (headers only)"
    head["responses"] = {code: {"description": value["description"]} for code, value in operation["responses"].items()}
    return head


META: dict[tuple[str, str], Operation] = {
    ("GET", "/health"): meta("Liveness: OK while the process serves", TEXT_OK),
    ("GET", "/health/ready"): meta(
        "Readiness: the metadata database (artifacts-only with --auth: the users' database) and the artifact "
        "destination answer",
        READY_OK,
        {"503": READY_503},
    ),
    ("GET", "/version"): meta(
        "The MLflow version whose protocol is served (the gateway's own in X-Artifact-Gateway-Version)", TEXT_OK
    ),
    ("GET", "/server-info"): meta("MLflow's capability probe", SERVER_INFO_OK),
    ("GET", OPENAPI_PATH): meta("This document", json_ok({"type": "object"})),
    ("GET", "/metrics"): meta(
        "Prometheus metrics in the text exposition format, summed over every worker",
        {"description": "OK", "content": {"text/plain": {"schema": STRING}}},
    ),
}
META.update(
    {
        ("HEAD", path): head_of(operation)
        for (method, path), operation in list(META.items())
        if path in ("/health", "/health/ready", "/version", "/server-info")
    }
)


def disabled(api: str) -> Operation:
    return {
        "summary": f"The {api} API is disabled in this server's mode",
        "tags": [api],
        "parameters": [{**ARTIFACT_PATH, "description": "any route of the disabled API"}],
        "responses": {"501": error("Disabled in this mode; the message names the flag"), "4XX": CLIENT_ERROR},
    }


# Keyed by (API family, METHOD, path below the family's prefix).
OPERATIONS: Operations = {
    **{
        ("server-info", method, path): operation for (method, path), operation in META.items() if path == "/server-info"
    },
    **{("", method, path): operation for (method, path), operation in META.items() if path != "/server-info"},
    ("tracking", "*", "/{path}"): disabled("tracking"),
    ("artifacts", "*", "/{path}"): disabled("artifacts"),
}
