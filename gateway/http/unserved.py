"""MLflow features this server does not serve yet, named in the 404 a client gets for their routes.

A stock client that calls one of them fails with `ENDPOINT_NOT_FOUND` either way; the message says
which feature is missing instead of only that the route is unknown.
"""

from __future__ import annotations

from gateway import __version__

_API_ROOTS = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow", "/api/3.0/mlflow", "/ajax-api/3.0/mlflow")


def _under_api_roots(*names: str) -> tuple[str, ...]:
    return tuple(f"{root}/{name}" for root in _API_ROOTS for name in names)


UNSERVED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("trace metrics (the charts of MLflow's own UI)", _under_api_roots("traces/metrics")),
    ("evaluation datasets and scorers", _under_api_roots("datasets", "scorers")),
    (
        "the AI gateway",
        ("/api/2.0/endpoints", "/api/2.0/gateway", "/ajax-api/2.0/mlflow/gateway-proxy", "/api/3.0/mlflow/gateway"),
    ),
)


def unserved_feature(path: str) -> str | None:
    """The MLflow feature whose routes `path` belongs to, when this server does not serve it."""
    for feature, prefixes in UNSERVED:
        if any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes):
            return feature
    return None


def not_served_message(feature: str) -> str:
    return (
        f"{feature[0].upper()}{feature[1:]} is not served by this server (artifact-gateway {__version__} "
        "serves MLflow's tracking API, the core of tracing and the artifact proxy; "
        "see 'What it does not do yet' in its README)"
    )
