"""`artifact-gateway gc`: permanently delete runs and experiments in the deleted state, as `mlflow gc` does."""
