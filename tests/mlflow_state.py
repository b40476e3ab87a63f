"""The stock client's process-global state, forgotten between tests that talk to different gateways."""

from __future__ import annotations

import os
import sys


def forget_mlflow_state(environment: dict[str, str] | None = None) -> None:
    """End active runs, forget the active experiment and tracking URI, and set the MLFLOW_* variables back
    to `environment` (by default drop only the experiment ones `set_experiment` writes)."""
    if environment is None:
        for key in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
            os.environ.pop(key, None)
    else:
        for key in [key for key in os.environ if key.startswith("MLFLOW_") and key not in environment]:
            del os.environ[key]
        os.environ.update(environment)
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.tracking.fluent._active_experiment_id = None
    mlflow.set_tracking_uri(None)
