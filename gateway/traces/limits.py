"""What one tracing request may carry."""

from __future__ import annotations

MAX_OTLP_BODY = 16 * 1024 * 1024
"""Bytes of one OTLP export (`POST /v1/traces`), after decompression; more is a 413."""
MAX_SPANS_PER_REQUEST = 10_000
"""Spans in one OTLP export; more is a 413."""
MAX_BATCH_GET = 10
"""Trace ids per `traces/batchGet`, as MLflow allows."""
MAX_SEARCH_RESULTS = 500
"""Traces per search page (MLflow's limit)."""
DEFAULT_SEARCH_RESULTS = 100
MAX_DELETE_IDS = 1000
"""Trace ids per `delete-traces` call."""
MAX_TAG_KEY = 250
MAX_PREVIEW = 1000
"""Characters of request/response previews kept (MLflow's SQL store keeps 1000)."""
MAX_LINKS_PER_REQUEST = 100
"""Trace ids per `traces/link-to-run` (MLflow's limit)."""
