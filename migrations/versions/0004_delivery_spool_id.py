"""delivery spool id

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spool_id", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_deliveries_spool_id"), ["spool_id"])


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_deliveries_spool_id"), type_="unique")
        batch_op.drop_column("spool_id")
