"""a metric point is stored once; links between metric points and logged models

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

POINT = ["run_uuid", "key", "step", "timestamp", "value", "is_nan"]


def upgrade() -> None:
    op.create_table(
        "logged_model_metrics",
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("run_uuid", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=False),
        sa.Column("is_nan", sa.Boolean(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("dataset_name", sa.String(length=500), nullable=True),
        sa.Column("dataset_digest", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["logged_models.model_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_uuid"], ["runs.run_uuid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("model_id", "key", "timestamp", "step", "run_uuid"),
    )
    # Points that earlier versions stored again with a model's id (log_model re-sends a run's
    # metrics) become links, then every point is kept once: the first one logged.
    op.execute(
        """
        INSERT INTO logged_model_metrics
            (model_id, key, timestamp, step, run_uuid, value, is_nan, experiment_id, dataset_name, dataset_digest)
        SELECT m.model_id, m.key, m.timestamp, m.step, m.run_uuid, MIN(m.value),
               MAX(CASE WHEN m.is_nan THEN 1 ELSE 0 END) = 1, MIN(r.experiment_id), MIN(m.dataset_name),
               MIN(m.dataset_digest)
        FROM metrics m JOIN runs r ON r.run_uuid = m.run_uuid JOIN logged_models lm ON lm.model_id = m.model_id
        WHERE m.model_id IS NOT NULL
        GROUP BY m.model_id, m.key, m.timestamp, m.step, m.run_uuid
        """
    )
    op.execute(
        """
        DELETE FROM metrics WHERE id NOT IN (
            SELECT first FROM (
                SELECT MIN(id) AS first FROM metrics GROUP BY run_uuid, key, step, timestamp, value, is_nan
            ) AS kept
        )
        """
    )
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.drop_index("ix_metrics_run_key_step")
        batch_op.create_index("uq_metrics_point", POINT, unique=True)


def downgrade() -> None:
    with op.batch_alter_table("metrics", schema=None) as batch_op:
        batch_op.drop_index("uq_metrics_point")
        batch_op.create_index("ix_metrics_run_key_step", ["run_uuid", "key", "step", "timestamp"], unique=False)
    op.drop_table("logged_model_metrics")
