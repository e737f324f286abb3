"""paging people: a notification may address a contact method instead of a channel

Revision ID: 0010_i15b_paging
Revises: 0005_i15_schedules
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_i15b_paging"
down_revision: str | None = "0005_i15_schedules"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ONE_TARGET = "(channel_id IS NULL) <> (contact_method_id IS NULL)"


def _keep_attempts() -> bool:
    """SQLite's batch mode copies `notifications` and drops the original; with foreign keys
    on (they are, and the pragma cannot change inside the migration's transaction) that
    drop cascades to every notification_attempts row. So the attempts are kept aside and
    put back; PostgreSQL alters the table in place."""
    if op.get_bind().dialect.name != "sqlite":
        return False
    op.execute("CREATE TEMP TABLE keep_attempts AS SELECT * FROM notification_attempts")
    return True


def _restore_attempts() -> None:
    op.execute(
        "INSERT INTO notification_attempts SELECT * FROM keep_attempts"
        " WHERE id NOT IN (SELECT id FROM notification_attempts)"
    )
    op.execute("DROP TABLE keep_attempts")


def upgrade() -> None:
    kept = _keep_attempts()
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_method_id", sa.Integer(), nullable=True))
        batch_op.alter_column("channel_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_index(
            batch_op.f("ix_notifications_contact_method_id"), ["contact_method_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_notifications_contact_method_id_contact_methods"),
            "contact_methods",
            ["contact_method_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_check_constraint("one_target", sa.text(_ONE_TARGET))
    if kept:
        _restore_attempts()


def downgrade() -> None:
    # Pages to people have no channel to go back to: they go (with their attempts).
    op.execute("DELETE FROM notifications WHERE channel_id IS NULL")
    kept = _keep_attempts()
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_notifications_one_target"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_notifications_contact_method_id_contact_methods"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_notifications_contact_method_id"))
        batch_op.alter_column("channel_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("contact_method_id")
    if kept:
        _restore_attempts()
