"""metric points without a foreign key trigger on PostgreSQL

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 13:55:00

PostgreSQL checks a foreign key with a trigger per inserted row: for a 1,000-point `log_batch` that
was a fifth of the statement's time (16.3 against 20.0 ms at the median, benchmarks/RESULTS.md).
The batch's statement now locks the run's row once (FOR KEY SHARE, the lock the trigger took per
row) and `gc` deletes a run's points itself. SQLite keeps the constraint: its check is a cheap
index probe, and dropping it there would rebuild the whole table.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_constraint("metrics_run_uuid_fkey", "metrics", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DELETE FROM metrics WHERE NOT EXISTS (SELECT FROM runs WHERE runs.run_uuid = metrics.run_uuid)")
    op.create_foreign_key("metrics_run_uuid_fkey", "metrics", "runs", ["run_uuid"], ["run_uuid"], ondelete="CASCADE")
