"""Tables of the metadata store (SQLAlchemy Core). Alembic migrations create and evolve them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.schema import ForeignKeyConstraint

metadata = MetaData()

ExperimentId = BigInteger().with_variant(Integer, "sqlite")
"""64-bit: an MLflow file store numbers experiments with 18 digits (SQLite's INTEGER already holds 64 bits)."""

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", ExperimentId, primary_key=True, autoincrement=True),
    Column("name", String(500), nullable=False),
    Column("artifact_location", Text, nullable=False),
    Column("lifecycle_stage", String(32), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
    UniqueConstraint("name", name="uq_experiments_name"),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column(
        "experiment_id", ExperimentId, ForeignKey("experiments.experiment_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_uuid", String(32), primary_key=True),
    Column("experiment_id", ExperimentId, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("name", String(250), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("status", String(20), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("lifecycle_stage", String(20), nullable=False),
    Column("artifact_uri", Text, nullable=False),
    Column("deleted_time", BigInteger, nullable=True),
)
# The default order of run listings (newest first): a page is read off this index instead of sorting them all.
Index("ix_runs_experiment_start", runs.c.experiment_id, runs.c.start_time.desc(), runs.c.run_uuid)

params = Table(
    "params",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

tags = Table(
    "tags",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

metrics = Table(
    "metrics",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("run_uuid", String(32), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Float(precision=53), nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("model_id", String(64), nullable=True),
    Column("dataset_name", String(500), nullable=True),
    Column("dataset_digest", String(64), nullable=True),
    # A point is stored once, as in MLflow (whose key is these columns): logging it again changes nothing.
    Index("uq_metrics_point", "run_uuid", "key", "step", "timestamp", "value", "is_nan", unique=True),
    # SQLite only (migration 0012): on PostgreSQL the constraint's trigger looked the run up once per
    # point, a fifth of a 1,000-point batch's time; there the batch's statement locks the run's row
    # once instead (`_POSTGRES_POINTS`) and `gc` deletes a run's points itself.
    ForeignKeyConstraint(["run_uuid"], ["runs.run_uuid"], ondelete="CASCADE").ddl_if(dialect="sqlite"),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Float(precision=53), nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True),
    Column("name", String(500), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("source_type", String(64), nullable=False),
    Column("source", Text, nullable=False),
    Column("schema", Text, nullable=True),
    Column("profile", Text, nullable=True),
    Column("tags", Text, nullable=False),  # JSON list of {"key", "value"}
)

logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(64), primary_key=True),
    Column("experiment_id", ExperimentId, ForeignKey("experiments.experiment_id"), nullable=False, index=True),
    Column("name", String(500), nullable=False),
    Column("artifact_location", Text, nullable=False),
    Column("creation_timestamp", BigInteger, nullable=False),
    Column("last_updated_timestamp", BigInteger, nullable=False),
    Column("status", String(32), nullable=False),
    Column("status_message", Text, nullable=True),
    Column("lifecycle_stage", String(32), nullable=False),
    Column("model_type", String(500), nullable=True),
    Column("source_run_id", String(32), nullable=True),
)

logged_model_metrics = Table(
    "logged_model_metrics",
    metadata,
    # A run's metric point linked to a logged model (MLflow 3 re-sends a run's metrics with the new
    # model's id after log_model): the link is kept here, the point itself stays once in `metrics`.
    Column("model_id", String(64), ForeignKey("logged_models.model_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("timestamp", BigInteger, primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True),
    Column("value", Float(precision=53), nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Column("experiment_id", ExperimentId, nullable=False),
    Column("dataset_name", String(500), nullable=True),
    Column("dataset_digest", String(64), nullable=True),
)

logged_model_tags = Table(
    "logged_model_tags",
    metadata,
    Column("model_id", String(64), ForeignKey("logged_models.model_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

logged_model_params = Table(
    "logged_model_params",
    metadata,
    Column("model_id", String(64), ForeignKey("logged_models.model_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

run_outputs = Table(
    "run_outputs",
    metadata,
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True),
    Column("model_id", String(64), primary_key=True),
    Column("step", BigInteger, nullable=False),
)

run_model_inputs = Table(
    "run_model_inputs",
    metadata,
    # The logged models a run used (MLflow's `log_inputs` models, shown as `inputs.model_inputs`).
    Column("run_uuid", String(32), ForeignKey("runs.run_uuid", ondelete="CASCADE"), primary_key=True),
    Column("model_id", String(64), ForeignKey("logged_models.model_id", ondelete="CASCADE"), primary_key=True),
)

registered_models = Table(
    "registered_models",
    metadata,
    # A surrogate key, so that renaming a model is one UPDATE of this row (its versions follow the id).
    Column("registered_model_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Column("description", Text, nullable=True),
    # The number the next version gets: raised in the transaction that creates it (the row's lock
    # serializes concurrent registrations), never lowered, so numbers are neither reused nor skipped.
    Column("next_version", Integer, nullable=False),
    UniqueConstraint("name", name="uq_registered_models_name"),
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column(
        "registered_model_id",
        Integer,
        ForeignKey("registered_models.registered_model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column(
        "registered_model_id",
        Integer,
        ForeignKey("registered_models.registered_model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Column("description", Text, nullable=True),
    Column("user_id", String(256), nullable=True),
    Column("current_stage", String(20), nullable=False),
    Column("source", Text, nullable=False),
    Column("run_id", String(32), nullable=True, index=True),
    Column("run_link", Text, nullable=True),
    Column("status", String(20), nullable=False),
    Column("status_message", Text, nullable=True),
    Column("storage_location", Text, nullable=False),
    Column("model_id", String(64), nullable=True),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("registered_model_id", Integer, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    ForeignKeyConstraint(
        ["registered_model_id", "version"],
        ["model_versions.registered_model_id", "model_versions.version"],
        ondelete="CASCADE",
    ),
)

registered_model_aliases = Table(
    "registered_model_aliases",
    metadata,
    Column("registered_model_id", Integer, primary_key=True),
    Column("alias", String(256), primary_key=True),
    Column("version", Integer, nullable=False),
    ForeignKeyConstraint(
        ["registered_model_id", "version"],
        ["model_versions.registered_model_id", "model_versions.version"],
        ondelete="CASCADE",
    ),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("webhook_id", String(36), primary_key=True),
    Column("name", String(63), nullable=False),
    Column("description", Text),
    Column("url", Text, nullable=False),
    Column("secret", Text),
    Column("status", String(20), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Column("deleted_time", BigInteger),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("webhook_id", String(36), ForeignKey("webhooks.webhook_id", ondelete="CASCADE"), primary_key=True),
    Column("entity", String(50), primary_key=True),
    Column("action", String(20), primary_key=True),
    Index("ix_webhook_events_event", "entity", "action"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("delivery_id", String(36), primary_key=True),
    Column("webhook_id", String(36), ForeignKey("webhooks.webhook_id", ondelete="CASCADE"), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_time", BigInteger, nullable=False),
    Column("claimed_until", BigInteger),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_error", Text),
    Index("ix_webhook_deliveries_due", "state", "next_attempt_time"),
)
"""A delivery waits here ('pending') until its webhook answers; one that can never succeed is kept as 'failed'."""

users = Table(
    "users",
    metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(128), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("permission", String(16), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    UniqueConstraint("username", name="uq_users_username"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(16), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("permission", String(16), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("expiry_time", BigInteger, nullable=True),
    UniqueConstraint("secret_sha256", name="uq_api_tokens_secret_sha256"),
)

# Tracing: one row per trace (MLflow's TraceInfo), its tags and request metadata, and its spans, each
# span kept as the OpenTelemetry span the client sent (protobuf JSON) so that reads answer it unchanged.
trace_info = Table(
    "trace_info",
    metadata,
    Column("trace_id", String(50), primary_key=True),
    Column("experiment_id", ExperimentId, ForeignKey("experiments.experiment_id", ondelete="CASCADE"), nullable=False),
    Column("request_time", BigInteger, nullable=False),
    Column("execution_duration", BigInteger, nullable=True),
    Column("state", String(50), nullable=False),
    Column("request_preview", Text, nullable=True),
    Column("response_preview", Text, nullable=True),
    Column("client_request_id", String(50), nullable=True),
    Index("index_trace_info_experiment_id_request_time", "experiment_id", "request_time"),
)

trace_tags = Table(
    "trace_tags",
    metadata,
    Column("trace_id", String(50), ForeignKey("trace_info.trace_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

trace_request_metadata = Table(
    "trace_request_metadata",
    metadata,
    Column("trace_id", String(50), ForeignKey("trace_info.trace_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

spans = Table(
    "spans",
    metadata,
    Column("trace_id", String(50), ForeignKey("trace_info.trace_id", ondelete="CASCADE"), primary_key=True),
    Column("span_id", String(50), primary_key=True),
    Column("parent_span_id", String(50), nullable=True),
    Column("name", Text, nullable=True),
    Column("start_time_unix_nano", BigInteger, nullable=False),
    Column("end_time_unix_nano", BigInteger, nullable=True),
    Column("status", String(50), nullable=False),
    Column("content", Text, nullable=False),
)

# Links made after the fact (MLflow's entity_associations): a trace to a run (`traces/link-to-run`) or to a
# prompt version ("name/version", `traces/link-prompts`). No foreign key: deleting traces deletes theirs.
entity_associations = Table(
    "entity_associations",
    metadata,
    Column("source_type", String(36), primary_key=True),
    Column("source_id", String(250), primary_key=True),
    Column("destination_type", String(36), primary_key=True),
    Column("destination_id", String(500), primary_key=True),
    Column("created_time", BigInteger, nullable=False),
    Index("index_entity_associations_destination", "destination_type", "destination_id"),
)

assessments = Table(
    "assessments",
    metadata,
    Column("assessment_id", String(50), primary_key=True),
    Column("trace_id", String(50), ForeignKey("trace_info.trace_id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(250), nullable=False),
    Column("create_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
    Column("content", Text, nullable=False),
)
