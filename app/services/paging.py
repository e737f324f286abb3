"""Paging through the notifications outbox, and escalations started and stopped by
incident events (docs/on-call.md).

Two joints between issue 14's notifications and issue 15's escalations:
- `page` is the sender `fire_escalation` calls for each person or channel a step reaches:
  it writes outbox rows in the firing transaction, one per usable contact method of a
  person (or one for a channel), so pages get the outbox's retries, attempt log, metrics
  and signed acknowledge links.
- `escalate_on_events` runs inside `queue_notifications`, with the incident change that
  caused the events: `triggered` starts the service's policy, `reopened` starts it over,
  `severity_raised` starts it if none ran since the last trigger, `acknowledged` and
  `resolved` stop it. One hook for every path that changes incidents (ingest, people,
  links, the Sentry UI, the acknowledgement timeout).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session, object_session

from app.domain.escalation import pages_people
from app.domain.incident import IncidentEvent
from app.services import escalations
from app.services.escalation_targets import PageTarget
from app.services.notification_documents import incident_document, incident_fields
from app.services.notifications import insert_outbox, outbox_row
from app.store.models import EscalationStep, Incident, Service, TimelineEntry

# Runs started over (reopen, acknowledgement timeout) page as a reopened incident.
_REOPENING = frozenset({"reopened", "ack_timeout"})
_STARTS = {IncidentEvent.TRIGGERED: "triggered", IncidentEvent.REOPENED: "reopened"}
_STOPS = {IncidentEvent.ACKNOWLEDGED: "acknowledged", IncidentEvent.RESOLVED: "resolved"}


def page(target: PageTarget, incident: Incident, step: EscalationStep) -> None:
    """Queue the outbox rows of one paged person (each usable method) or channel."""
    session = object_session(incident)
    assert session is not None  # fire_escalation hands over its own, attached incident
    assert target.fired_at is not None  # fire_escalation's clock, handed over
    now = target.fired_at
    service = session.get(Service, incident.service_id)
    assert service is not None
    type_ = "incident.reopened" if target.reason in _REOPENING else "incident.triggered"
    document = {
        "incident": incident_document(incident_fields(incident), service.name),
        "page": {
            "run": target.run,
            "round": target.repeat + 1,
            "step": target.step_index + 1,
            "reason": target.reason,
            "via_schedule": target.via_schedule,
            "person": target.email,
        },
    }
    if target.kind == "channel":
        assert target.channel_id is not None
        rows = [outbox_row(target.channel_id, incident.id, type_, document, now)]
    else:
        rows = [
            outbox_row(None, incident.id, type_, document, now, contact_method_id=method_id)
            for method_id in target.contact_method_ids
        ]
    insert_outbox(session.connection(), rows)


def escalate_on_events(
    connection: Connection,
    incident: dict[str, Any],
    events: Sequence[IncidentEvent],
    service: Any,
    now: datetime,
    reason: str | None = None,
) -> None:
    """Start, restart or stop the incident's escalation for its events (same transaction).

    `service` is the service row as the outbox's SELECT read it (escalation_policy_id,
    page_min_severity): a service without a policy costs nothing more on the hot path
    unless an acknowledge or resolve has runs to stop.
    """
    stopping = [word for event, word in _STOPS.items() if event in events]
    starting = next((word for event, word in _STARTS.items() if event in events), None)
    raised = IncidentEvent.SEVERITY_RAISED in events
    has_policy = service.escalation_policy_id is not None
    wants_start = (starting is not None or raised) and has_policy
    if not stopping and not wants_start:
        return
    if wants_start and not pages_people(incident["severity"], service.page_min_severity):
        if not stopping:
            return
        wants_start = False
    # The outbox speaks Core on the caller's connection; the escalation services are ORM.
    # A session joined to that connection's transaction never commits or ends it.
    with Session(bind=connection, join_transaction_mode="conditional_savepoint") as session:
        if stopping:
            _stop(session, incident["id"], stopping[-1], now)
        if wants_start:
            row = session.get(Incident, incident["id"])
            assert row is not None
            if starting is not None:
                escalations.start_escalation(session, row, reason or starting, now)
            elif not escalations.has_run_since(session, row.id, row.triggered_at):
                escalations.start_escalation(session, row, reason or "severity_raised", now)
        session.flush()


def _stop(session: Session, incident_id: int, why: str, now: datetime) -> None:
    if escalations.stop_escalation(session, incident_id, now):
        session.add(
            TimelineEntry(
                incident_id=incident_id,
                at=now,
                kind="escalation",
                actor=escalations.ACTOR,
                message=f"Escalation stopped: the incident was {why}.",
                data={"stopped": why},
            )
        )
