"""artifact-gateway: a streaming, MLflow-compatible artifact service."""

__version__ = "0.1.0"
