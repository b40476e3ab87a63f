"""MLflow's limits and enumerations for tracking data, importable without the database stack."""

from __future__ import annotations

RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
MODEL_STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")
MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
"""A run tag's value."""
MAX_EXPERIMENT_TAG_VALUE = 20_000
"""An experiment tag's value (MLflow's MAX_EXPERIMENT_TAG_VAL_LENGTH)."""
MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS, MAX_BATCH_TOTAL = 1000, 100, 100, 1000
MAX_SEARCH_RESULTS = 50_000
"""Experiments or runs per search request."""
DEFAULT_SEARCH_RESULTS = 1000
MAX_LOGGED_MODELS, DEFAULT_LOGGED_MODELS = 1000, 50
"""Logged models per page of a search: the most (a larger max_results is served in pages of this many,
with next_page_token), and the default when max_results is not given (MLflow's)."""
ZERO_LOGGED_MODELS = 100
"""Logged models per page when a search asks for max_results 0: MLflow's store default."""
MAX_MODEL_PARAMS = 100
"""Params per request to a logged model (`logged-models/{id}/params`): the batch MLflow's client sends."""
MAX_MODEL_NAME = 500
"""Characters of a logged model's name or model_type, as MLflow's columns."""
MAX_HISTORY = 25_000
"""Points of one metric's history per request, as MLflow's GetMetricHistory and its bulk UI route."""
MAX_BULK_RUNS = 100
"""Runs per request of the bulk history route."""
MAX_EXPERIMENT_NAME = 500
MAX_RUN_NAME = 250
MAX_USER_ID = 256
"""Lengths of the names the metadata store keeps in bounded columns (MLflow's and its schema's)."""
DATASET_FIELD_LIMITS = {
    "name": 500,
    "digest": 36,
    "source_type": 36,
    "source": 65_535,
    "schema": 1_048_575,
    "profile": 16_777_215,
}
"""A dataset's fields, as MLflow's `_validate_dataset` and its schema bound them."""
MAX_INPUT_TAG_KEY, MAX_INPUT_TAG_VALUE = 255, 500
"""A dataset input's tags (e.g. `mlflow.data.context`)."""
