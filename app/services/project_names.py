"""A Sentry project's one name per service: learnt from deliveries that give slug and
name, used for those that give only the slug."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Connection

from app.domain.alerts import Alert, source_for
from app.services.delivery_records import RecordedDelivery
from app.store import receiver_memory as memory
from app.store.receiver_rows import IncidentRow


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


def adopt_project_name(
    connection: Connection,
    service_id: int,
    incident: IncidentRow,
    alert: Alert,
    delivery: RecordedDelivery,
) -> None:
    """An open incident named by its slug (or an old name) takes the name this delivery
    gives its project, and the service learns it. Nothing is written when it is the same."""
    if alert.project is None or alert.project_name is None or incident.source == alert.source:
        return
    incident.source = alert.source
    memory.learn_project_name(
        connection, service_id, alert.project, alert.project_name, delivery.received_at
    )
