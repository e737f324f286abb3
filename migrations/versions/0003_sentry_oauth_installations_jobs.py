"""sentry oauth: installations, oauth states, job outbox, write-back flag

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sentry_installations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("org_slug", sa.String(length=200), nullable=True),
        sa.Column("app_uuid", sa.String(length=64), nullable=True),
        sa.Column("integration_id", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("token_ciphertext", sa.Text(), nullable=True),
        sa.Column("refresh_token_ciphertext", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.Column("grant_code_hash", sa.String(length=64), nullable=True),
        sa.Column("exchange_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_sentry_installations_integration_id_integrations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_sentry_installations_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sentry_installations")),
        sa.UniqueConstraint("uuid", name=op.f("uq_sentry_installations_uuid")),
    )
    with op.batch_alter_table("sentry_installations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sentry_installations_integration_id_status",
            ["integration_id", "status"],
            unique=False,
        )
        batch_op.create_index(
            "ix_sentry_installations_status_expires_at", ["status", "expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sentry_installations_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "sentry_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("integration_id", sa.String(length=64), nullable=True),
        sa.Column("installation_uuid", sa.String(length=64), nullable=True),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_sentry_jobs_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_sentry_jobs_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sentry_jobs")),
    )
    with op.batch_alter_table("sentry_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sentry_jobs_incident_id"), ["incident_id"], unique=False
        )
        batch_op.create_index(
            "ix_sentry_jobs_status_run_after", ["status", "run_after"], unique=False
        )

    op.create_table(
        "sentry_oauth_states",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("integration_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_sentry_oauth_states_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_sentry_oauth_states_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_sentry_oauth_states")),
    )
    with op.batch_alter_table("sentry_oauth_states", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sentry_oauth_states_expires_at"), ["expires_at"], unique=False
        )

    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("write_back", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_column("write_back")

    with op.batch_alter_table("sentry_oauth_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sentry_oauth_states_expires_at"))

    op.drop_table("sentry_oauth_states")
    with op.batch_alter_table("sentry_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_sentry_jobs_status_run_after")
        batch_op.drop_index(batch_op.f("ix_sentry_jobs_incident_id"))

    op.drop_table("sentry_jobs")
    with op.batch_alter_table("sentry_installations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sentry_installations_user_id"))
        batch_op.drop_index("ix_sentry_installations_status_expires_at")
        batch_op.drop_index("ix_sentry_installations_integration_id_status")

    op.drop_table("sentry_installations")
