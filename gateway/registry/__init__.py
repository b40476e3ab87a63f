"""The model registry: registered models, their versions, tags and aliases (MLflow's REST API)."""
