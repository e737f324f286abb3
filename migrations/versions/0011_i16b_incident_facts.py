"""incidents keep what the payload says (culprit, environment, release, platform, tags,
Sentry's counts, the event's own time) and whether they are the bridge's test alert

Revision ID: 0011_i16b_incident_facts
Revises: 0010_i15b_paging
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011_i16b_incident_facts"
down_revision: str | None = "0010_i15b_paging"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NEW_COLUMNS = (
    "culprit",
    "environment",
    "release",
    "platform",
    "tags",
    "sentry_count",
    "sentry_user_count",
    "event_at",
    "is_test",
)


def upgrade() -> None:
    # Added columns only (nullable, or with a server default): SQLite's ALTER TABLE ADD
    # COLUMN does it in place, without batch mode's copy of the incidents table.
    op.add_column("incidents", sa.Column("culprit", sa.String(length=500), nullable=True))
    op.add_column("incidents", sa.Column("environment", sa.String(length=255), nullable=True))
    op.add_column("incidents", sa.Column("release", sa.String(length=255), nullable=True))
    op.add_column("incidents", sa.Column("platform", sa.String(length=64), nullable=True))
    op.add_column(
        "incidents",
        sa.Column("tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
    )
    op.add_column("incidents", sa.Column("sentry_count", sa.BigInteger(), nullable=True))
    op.add_column("incidents", sa.Column("sentry_user_count", sa.BigInteger(), nullable=True))
    op.add_column("incidents", sa.Column("event_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "incidents",
        sa.Column("is_test", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    # Test alerts sent before this revision: their issue id says so.
    incidents = sa.table(
        "incidents", sa.column("is_test", sa.Boolean()), sa.column("sentry_issue_id")
    )
    op.execute(
        incidents.update()
        .where(incidents.c.sentry_issue_id.like("bridge-test-%"))
        .values(is_test=sa.true())
    )


def downgrade() -> None:
    # Not batch mode: on SQLite its copy-and-drop of `incidents` would cascade to every
    # timeline entry (foreign keys are on). SQLite 3.35+ drops a column in place.
    for name in reversed(_NEW_COLUMNS):
        op.execute(f"ALTER TABLE incidents DROP COLUMN {name}")
