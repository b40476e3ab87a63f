"""drop ix_runs_experiment_id: ix_runs_experiment_start begins with experiment_id and serves its lookups

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 07:05:00
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every run insert kept two indexes up to date where one answers the same queries.
    op.drop_index("ix_runs_experiment_id", table_name="runs")


def downgrade() -> None:
    op.create_index("ix_runs_experiment_id", "runs", ["experiment_id"], unique=False)
