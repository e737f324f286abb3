"""incident list: indexes for the "on fire first" (urgency) and severity sorts

The list reads those orders one (status, severity) or (severity) segment at a time, each
segment newest first, so plain composite indexes serve every page without a sort step.

Revision ID: 0011_i16a_list_order
Revises: 0011_i16b_incident_facts
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011_i16a_list_order"
down_revision: str | None = "0011_i16b_incident_facts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_incidents_status_severity_id", "incidents", ["status", "severity", "id"])
    op.create_index("ix_incidents_severity_id", "incidents", ["severity", "id"])


def downgrade() -> None:
    op.drop_index("ix_incidents_severity_id", table_name="incidents")
    op.drop_index("ix_incidents_status_severity_id", table_name="incidents")
