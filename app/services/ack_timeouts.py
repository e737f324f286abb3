"""The acknowledgement timeout: an incident acknowledged and not resolved within its
service's `ack_timeout_minutes` is re-triggered and escalated again (docs/on-call.md).

The change goes through the one incident decision (`change_incident` with a `JobAction`):
status back to triggered, a timeline entry, and a `reopened` event. That event notifies
the channels like any reopen and, through `queue_notifications`, starts the service's
escalation over (reason `ack_timeout`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.domain.escalation import ack_timeout_at
from app.domain.incident import JobAction, change_incident
from app.domain.lifecycle import Status
from app.services.notification_documents import incident_fields
from app.services.notifications import queue_notifications
from app.store import incidents
from app.store.models import Service
from app.store.time_scale import minute_of

ACTOR = "escalation"


def retrigger_unanswered(session: Session, now: datetime, limit: int = 50) -> list[int]:
    """Re-trigger the acknowledged incidents whose timeout has passed; their ids.

    The timeout is at least a minute, so only incidents acknowledged that long ago are
    looked at; the exact moment is the pure `ack_timeout_at`. The rows are then locked
    (SKIP LOCKED: another jobs process takes the others) and checked again.
    """
    minute = minute_of(session.connection())
    candidates = incidents.ack_timeout_candidates(session, now - minute, limit)
    due = [
        row.id
        for row in candidates
        if row.acknowledged_at is not None
        and (moment := ack_timeout_at(row.acknowledged_at, row.ack_timeout_minutes, minute))
        and moment <= now
    ]
    if not due:
        return []
    done = []
    for incident in incidents.lock_available(session, due):
        service = session.get(Service, incident.service_id)
        if (
            incident.status != Status.ACKNOWLEDGED.value
            or incident.acknowledged_at is None
            or service is None
            or not service.ack_timeout_minutes
        ):
            continue  # resolved or re-acknowledged meanwhile
        cause = JobAction(incident.acknowledged_at, service.ack_timeout_minutes, ACTOR)
        change = change_incident(incident_fields(incident), cause, now, now)
        incidents.apply_change(session, incident, change, now)
        session.flush()
        if change.events:
            queue_notifications(
                session.connection(),
                incident_fields(incident),
                change.events,
                now,
                escalation_reason="ack_timeout",
            )
        done.append(incident.id)
    return done
