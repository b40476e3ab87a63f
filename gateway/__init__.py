"""artifact-gateway: a streaming, MLflow-compatible artifact service."""

__version__ = "0.1.0"

MLFLOW_VERSION = "3.17.2"
"""The MLflow release whose REST protocol this gateway implements: what `/version` answers, since the
stock client reads it to decide what a server supports (`log_spans` needs 3.4 or newer)."""
