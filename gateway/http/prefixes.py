"""Where each API lives: the URL prefixes every capability, the OpenAPI document and the UI agree on."""

from __future__ import annotations

TRACKING_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
ARTIFACTS_PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
SERVER_INFO_PREFIXES = ("/api/3.0/mlflow", "/ajax-api/3.0/mlflow")
ADMIN_PREFIX = "/api/2.0/artifact-gateway"
