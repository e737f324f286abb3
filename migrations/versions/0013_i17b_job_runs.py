"""periodic jobs run once per interval cluster-wide: the job_runs claim table

Revision ID: 0011_i17b_job_runs
Revises: 0011_i16a_list_order
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_i17b_job_runs"
down_revision: str | None = "0011_i16a_list_order"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    op.create_index("uq_job_runs_job_slot", "job_runs", ["job", "slot"], unique=True)
    op.create_index("ix_job_runs_started_at", "job_runs", ["started_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_job_runs_started_at", table_name="job_runs")
    op.drop_index("uq_job_runs_job_slot", table_name="job_runs")
    op.drop_table("job_runs")
