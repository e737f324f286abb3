"""A delivery's decided step as the writes to its incident: fields, timeline, events.

What the step does to the incident is decided in app/domain/incident.py (change_incident);
this turns that into the rows app/store/receiver_rows.py writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from app.domain.alerts import Alert
from app.domain.incident import Note, change_incident
from app.domain.lifecycle import Decision, IncidentState, Status, Step
from app.domain.sentry_news import news_of
from app.domain.severity import Severity
from app.services.delivery_records import RecordedDelivery
from app.store import receiver_memory as memory
from app.store import receiver_rows as rows
from app.store.receiver_rows import IncidentChange, IncidentRow


def incident_state(incident: IncidentRow | None) -> IncidentState | None:
    if incident is None:
        return None
    return IncidentState(
        status=Status(incident.status),
        severity=Severity(incident.severity),
        last_transition_at=incident.last_transition_at,
        last_event_at=incident.last_event_at,
        resolved_at=incident.resolved_at,
    )


def open_incident(
    connection: Connection,
    service_id: int,
    alert: Alert,
    at: datetime,
    delivery: RecordedDelivery,
) -> IncidentChange | None:
    """A new incident and its first timeline entry; None if the key was opened meanwhile."""
    assert alert.dedup_key is not None
    change = change_incident(
        None, news_of(Decision(Step.CREATE, matched=False), alert), at, delivery.received_at
    )
    values = {"service_id": service_id, **change.fields}
    incident_id = rows.insert_open_incident(connection, values)
    if incident_id is None:
        return None
    if alert.event_id is not None:  # a new incident: nothing can have counted it yet
        memory.claim_event(
            connection, incident_id, alert.event_id, delivery.id, delivery.received_at
        )
    incident = IncidentRow(id=incident_id, **values)
    timeline = [_entry(note, incident.id, delivery.id, at) for note in change.notes]
    return IncidentChange(incident, None, timeline, change.events)


def _entry(note: Note, incident_id: int, delivery_id: int, at: datetime) -> dict[str, Any]:
    """A timeline row for a note a delivery's change writes."""
    return {
        "incident_id": incident_id,
        "at": at,
        "kind": note.kind,
        "actor": note.actor,
        "message": note.message,
        "data": note.data,
        "delivery_id": delivery_id,
    }


def changed_incident(
    incident: IncidentRow,
    decision: Decision,
    alert: Alert,
    at: datetime,
    delivery: RecordedDelivery,
) -> IncidentChange:
    """The decided step applied to a locked incident, as the writes it needs."""
    before = incident.snapshot()
    change = change_incident(before, news_of(decision, alert), at, delivery.received_at)
    for name, value in change.fields.items():
        setattr(incident, name, value)
    timeline = [_entry(note, incident.id, delivery.id, at) for note in change.notes]
    return IncidentChange(incident, before, timeline, change.events)
