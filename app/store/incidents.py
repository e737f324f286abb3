"""Intent-named queries of incidents, their timelines and the deliveries that touched them.

Locks are taken where the caller decides on what it read. The receiver's hot path has its
own Core statements (app/store/receiver_rows.py); these serve people, jobs and the UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from app.domain.lifecycle import Status
from app.store.models import Delivery, Incident, Service, TimelineEntry


def find_incident(session: Session, incident_id: int, lock: bool = False) -> Incident | None:
    query = select(Incident).where(Incident.id == incident_id)
    return session.scalar(query.with_for_update() if lock else query)


def timeline_of(session: Session, incident_id: int) -> list[TimelineEntry]:
    return list(
        session.scalars(
            select(TimelineEntry)
            .where(TimelineEntry.incident_id == incident_id)
            .order_by(TimelineEntry.id)
        )
    )


def deliveries_of(session: Session, incident_id: int) -> list[Delivery]:
    """Deliveries that touched the incident: the ones that changed it or were judged on it."""
    via_timeline = select(TimelineEntry.delivery_id).where(
        TimelineEntry.incident_id == incident_id, TimelineEntry.delivery_id.is_not(None)
    )
    return list(
        session.scalars(
            select(Delivery)
            .where(or_(Delivery.incident_id == incident_id, Delivery.id.in_(via_timeline)))
            .order_by(Delivery.id)
        )
    )


def latest_integration_of(session: Session, incident_id: int) -> str | None:
    """The integration of the latest delivery that acted on the incident."""
    return session.scalar(
        select(Delivery.integration_id)
        .where(Delivery.incident_id == incident_id)
        .order_by(Delivery.id.desc())
        .limit(1)
    )


def open_incidents_matching(
    session: Session, service_ids: Sequence[int], title: str | None, number: int | None, limit: int
) -> list[Incident]:
    """Open incidents of these services, newest first: those whose title holds `title`
    (case-insensitive) or whose id is `number`, when either is given."""
    statement = (
        select(Incident)
        .where(Incident.status != Status.RESOLVED.value, Incident.service_id.in_(service_ids))
        .order_by(Incident.id.desc())
        .limit(limit)
    )
    if title:
        conditions: list[ColumnElement[bool]] = [Incident.title.ilike(f"%{title}%")]
        if number is not None:
            conditions.append(Incident.id == number)
        statement = statement.where(or_(*conditions))
    return list(session.scalars(statement))


def ack_timeout_candidates(session: Session, acknowledged_before: datetime, limit: int) -> Any:
    """Acknowledged incidents of services with an acknowledgement timeout, acknowledged
    before the given time, oldest first: rows of (id, acknowledged_at, ack_timeout_minutes)."""
    return session.execute(
        select(Incident.id, Incident.acknowledged_at, Service.ack_timeout_minutes)
        .join(Service, Service.id == Incident.service_id)
        .where(
            Incident.status == Status.ACKNOWLEDGED.value,
            Service.ack_timeout_minutes > 0,
            Incident.acknowledged_at <= acknowledged_before,
        )
        .order_by(Incident.acknowledged_at)
        .limit(limit)
    ).all()


def lock_available(session: Session, incident_ids: Sequence[int]) -> list[Incident]:
    """These incidents, locked; those another transaction holds are skipped (SKIP LOCKED)."""
    return list(
        session.scalars(
            select(Incident).where(Incident.id.in_(incident_ids)).with_for_update(skip_locked=True)
        )
    )


def opened_between(
    session: Session, service_id: int, start: datetime, end: datetime, top: int
) -> tuple[int, list[Incident]]:
    """How many incidents the service opened in [start, end), and the `top` of them with
    the most events."""
    in_window = and_(
        Incident.service_id == service_id,
        Incident.created_at >= start,
        Incident.created_at < end,
    )
    count = session.scalar(select(func.count()).select_from(Incident).where(in_window)) or 0
    most = session.scalars(
        select(Incident)
        .where(in_window)
        .order_by(Incident.event_count.desc(), Incident.id)
        .limit(top)
    )
    return count, list(most)
