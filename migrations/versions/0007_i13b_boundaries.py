"""boundaries: signed-body claims (replays), session generations (logout everywhere)

Revision ID: 0005_i13b_boundaries
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_i13b_boundaries"
down_revision: str | None = "0005_i13a_refusals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_body_claims",
        sa.Column("integration_id", sa.String(length=64), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_body_claims_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_delivery_body_claims_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "integration_id", "body_sha256", name=op.f("pk_delivery_body_claims")
        ),
    )
    op.create_index(
        op.f("ix_delivery_body_claims_claimed_at"),
        "delivery_body_claims",
        ["claimed_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_delivery_body_claims_delivery_id"),
        "delivery_body_claims",
        ["delivery_id"],
        unique=False,
    )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_generation")
    op.drop_index(op.f("ix_delivery_body_claims_delivery_id"), table_name="delivery_body_claims")
    op.drop_index(op.f("ix_delivery_body_claims_claimed_at"), table_name="delivery_body_claims")
    op.drop_table("delivery_body_claims")
