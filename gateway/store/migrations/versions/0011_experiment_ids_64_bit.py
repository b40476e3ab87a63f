"""experiment ids of 64 bits: an MLflow file store's experiments (18-digit ids) can be imported

Revision ID: 0011
Revises: 0008 (the integrator re-chains after the other branches' revisions)
Create Date: 2026-12-07 04:05:00

SQLite's INTEGER already holds 64 bits, so only PostgreSQL's columns (and the experiments' id
sequence) change.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

COLUMNS = (
    ("experiments", "experiment_id"),
    ("experiment_tags", "experiment_id"),
    ("runs", "experiment_id"),
    ("logged_models", "experiment_id"),
    ("logged_model_metrics", "experiment_id"),
    ("trace_info", "experiment_id"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False)
    op.execute("ALTER SEQUENCE IF EXISTS experiments_experiment_id_seq AS bigint")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER SEQUENCE IF EXISTS experiments_experiment_id_seq AS integer")
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=False)
