"""traces: trace info, tags, request metadata, spans and assessments

Revision ID: 0008
Revises: 0007 (re-chained after the registry's 0007 when the branches merge)
Create Date: 2026-12-07 02:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trace_info",
        sa.Column("trace_id", sa.String(length=50), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("request_time", sa.BigInteger(), nullable=False),
        sa.Column("execution_duration", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=50), nullable=False),
        sa.Column("request_preview", sa.Text(), nullable=True),
        sa.Column("response_preview", sa.Text(), nullable=True),
        sa.Column("client_request_id", sa.String(length=50), nullable=True),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.experiment_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("trace_id"),
    )
    op.create_index("index_trace_info_experiment_id_request_time", "trace_info", ["experiment_id", "request_time"])
    for name in ("trace_tags", "trace_request_metadata"):
        op.create_table(
            name,
            sa.Column("trace_id", sa.String(length=50), nullable=False),
            sa.Column("key", sa.String(length=250), nullable=False),
            sa.Column("value", sa.Text(), nullable=False),
            sa.ForeignKeyConstraint(["trace_id"], ["trace_info.trace_id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("trace_id", "key"),
        )
    op.create_table(
        "spans",
        sa.Column("trace_id", sa.String(length=50), nullable=False),
        sa.Column("span_id", sa.String(length=50), nullable=False),
        sa.Column("parent_span_id", sa.String(length=50), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("start_time_unix_nano", sa.BigInteger(), nullable=False),
        sa.Column("end_time_unix_nano", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=50), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["trace_id"], ["trace_info.trace_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("trace_id", "span_id"),
    )
    op.create_table(
        "assessments",
        sa.Column("assessment_id", sa.String(length=50), nullable=False),
        sa.Column("trace_id", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("create_time", sa.BigInteger(), nullable=False),
        sa.Column("last_update_time", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["trace_id"], ["trace_info.trace_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("assessment_id"),
    )
    op.create_index("ix_assessments_trace_id", "assessments", ["trace_id"])


def downgrade() -> None:
    op.drop_index("ix_assessments_trace_id", table_name="assessments")
    op.drop_table("assessments")
    op.drop_table("spans")
    op.drop_table("trace_request_metadata")
    op.drop_table("trace_tags")
    op.drop_index("index_trace_info_experiment_id_request_time", table_name="trace_info")
    op.drop_table("trace_info")
