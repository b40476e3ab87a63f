"""an index for listing an experiment's runs newest first

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 03:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_runs_experiment_start", "runs", ["experiment_id", sa.text("start_time DESC"), "run_uuid"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_runs_experiment_start", table_name="runs")
