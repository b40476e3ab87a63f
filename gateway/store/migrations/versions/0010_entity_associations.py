"""entity associations: traces linked to runs and to prompt versions after the fact

Revision ID: 0010
Revises: 0008 (re-chained by the integrator after the migrations merged before it)
Create Date: 2026-12-07 03:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entity_associations",
        sa.Column("source_type", sa.String(length=36), nullable=False),
        sa.Column("source_id", sa.String(length=250), nullable=False),
        sa.Column("destination_type", sa.String(length=36), nullable=False),
        sa.Column("destination_id", sa.String(length=500), nullable=False),
        sa.Column("created_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source_type", "source_id", "destination_type", "destination_id"),
    )
    op.create_index(
        "index_entity_associations_destination", "entity_associations", ["destination_type", "destination_id"]
    )


def downgrade() -> None:
    op.drop_index("index_entity_associations_destination", table_name="entity_associations")
    op.drop_table("entity_associations")
