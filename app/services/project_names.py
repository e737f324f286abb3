"""A Sentry project's one name per service: learnt from deliveries that give slug and
name, used for those that give only the slug."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import Connection

from app.domain.alerts import Alert, source_for
from app.services.delivery_records import RecordedDelivery
from app.store import receiver_memory as memory
from app.store.receiver_rows import IncidentChange


def with_project_name(
    connection: Connection, service_id: int, alert: Alert, delivery: RecordedDelivery
) -> Alert:
    """The alert with its project's one name: learnt from a delivery that gives both slug
    and name, used for one that gives only the slug (event alerts, errors, metric alerts)."""
    if alert.project is None:
        return alert
    if alert.project_name is not None:
        memory.learn_project_name(
            connection, service_id, alert.project, alert.project_name, delivery.received_at
        )
        return alert
    learned = memory.learned_project_name(connection, service_id, alert.project)
    return replace(alert, source=source_for(learned)[:255]) if learned else alert


def learn_adopted_name(
    connection: Connection, service_id: int, change: IncidentChange, alert: Alert, at: datetime
) -> None:
    """The service learns the name an open incident took from this delivery (the rule is
    change_incident's); nothing is written when the incident kept its name."""
    if alert.project is None or alert.project_name is None:
        return
    if "source" in change.changed_columns():
        memory.learn_project_name(connection, service_id, alert.project, alert.project_name, at)
