"""MLflow's tracing API: traces started by the client, their spans (OTLP), searches, tags, deletes."""
