"""a storm digest records the incidents it stands for: the digest_members table

Revision ID: 0014_i17c_digest_members
Revises: 0011_i17b_job_runs
Create Date: 2026-12-02
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_i17c_digest_members"
down_revision: str | None = "0011_i17b_job_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DIGEST_TYPE = "incidents.digest"


def upgrade() -> None:
    op.create_table(
        "digest_members",
        sa.Column("notification_id", sa.String(length=36), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_digest_members_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_digest_members_notification_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("notification_id", "incident_id", name=op.f("pk_digest_members")),
    )
    op.create_index(
        op.f("ix_digest_members_incident_id"), "digest_members", ["incident_id"], unique=False
    )
    _backfill_waiting_digests()


def _backfill_waiting_digests() -> None:
    """A digest queued before this revision (its window still open, its count not yet
    filled in) gets the members it would have counted: the service's incidents opened in
    its window, less those the channel heard of one by one. From here on the openers add
    themselves, and the sender counts members only."""
    bind = op.get_bind()
    notifications = sa.table(
        "notifications",
        sa.column("id", sa.String()),
        sa.column("channel_id", sa.Integer()),
        sa.column("incident_id", sa.Integer()),
        sa.column("type", sa.String()),
        sa.column("document", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
    )
    incidents = sa.table(
        "incidents",
        sa.column("id", sa.Integer()),
        sa.column("service_id", sa.Integer()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    members = sa.table(
        "digest_members", sa.column("notification_id", sa.String()), sa.column("incident_id")
    )
    digests = bind.execute(
        sa.select(notifications.c.id, notifications.c.channel_id, notifications.c.document).where(
            notifications.c.type == DIGEST_TYPE
        )
    ).all()
    for digest_id, channel_id, document in digests:
        if "count" in document:  # already filled in (sent, or being sent): it stays as it is
            continue
        # UTC, and so naive on SQLite as the bridge stores it (app/store/types.py).
        start, end = (
            datetime.fromisoformat(document[key]).astimezone(UTC)
            for key in ("window_start", "window_end")
        )
        if bind.dialect.name == "sqlite":
            start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
        heard_alone = sa.select(notifications.c.incident_id).where(
            notifications.c.channel_id == channel_id, notifications.c.incident_id.is_not(None)
        )
        found = bind.execute(
            sa.select(incidents.c.id).where(
                incidents.c.service_id == document["service"]["id"],
                incidents.c.created_at >= start,
                incidents.c.created_at < end,
                incidents.c.id.not_in(heard_alone),
            )
        ).scalars()
        rows = [{"notification_id": digest_id, "incident_id": found_id} for found_id in found]
        if rows:
            bind.execute(members.insert(), rows)


def downgrade() -> None:
    op.drop_index(op.f("ix_digest_members_incident_id"), table_name="digest_members")
    op.drop_table("digest_members")
