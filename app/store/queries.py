"""Intent-named queries. Locks are taken where a decision depends on what was read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, joinedload

from app.domain.lifecycle import Status
from app.store.models import Delivery, DeliveryClaim, Incident, Integration, Service


def get_integration(session: Session, integration_id: str) -> Integration | None:
    """The integration with its service, in one query (every delivery needs both)."""
    return session.get(Integration, integration_id, options=[joinedload(Integration.service)])


def get_service_by_name(session: Session, name: str) -> Service | None:
    return session.scalar(select(Service).where((Service.name == name) | (Service.slug == name)))


def find_open_incident(session: Session, service_id: int, dedup_key: str) -> Incident | None:
    """The one unresolved incident for the key, locked until the transaction ends."""
    return session.scalar(
        select(Incident)
        .where(
            Incident.service_id == service_id,
            Incident.dedup_key == dedup_key,
            Incident.status != Status.RESOLVED.value,
        )
        .with_for_update()
    )


def find_open_incident_routed_from(
    session: Session, integration_id: str, dedup_key: str
) -> Incident | None:
    """An open incident for the key that this integration's deliveries opened elsewhere
    (an alert-rule action chose another service), locked until the transaction ends."""
    touched = select(Delivery.incident_id).where(
        Delivery.integration_id == integration_id, Delivery.dedup_key == dedup_key
    )
    return session.scalar(
        select(Incident)
        .where(
            Incident.dedup_key == dedup_key,
            Incident.status != Status.RESOLVED.value,
            Incident.id.in_(touched),
        )
        .order_by(Incident.id.desc())
        .limit(1)
        .with_for_update()
    )


def find_latest_resolved_incident(
    session: Session, service_id: int, dedup_key: str
) -> Incident | None:
    """The most recent resolved incident for the key (a reopen candidate), locked."""
    status: ColumnElement[str] = Incident.status.expression
    if session.get_bind().dialect.name == "sqlite":
        # Without statistics SQLite walks the status index through every resolved incident
        # (seconds at a million). An expression on the column keeps that index out of the
        # plan, so the key index finds the handful of incidents for this key.
        status = Incident.status + ""
    return session.scalar(
        select(Incident)
        .where(
            Incident.service_id == service_id,
            Incident.dedup_key == dedup_key,
            status == Status.RESOLVED.value,
        )
        .order_by(Incident.id.desc())
        .limit(1)
        .with_for_update()
    )


def claim_request_id(
    session: Session, integration_id: str, request_id: str, delivery_id: int, now: datetime
) -> int | None:
    """Claim Sentry's Request-ID for this delivery; the id of the earlier claimant if taken.

    One `INSERT ... ON CONFLICT DO NOTHING RETURNING` on the primary key: two concurrent
    deliveries of one Request-ID cannot both win (on PostgreSQL the second waits for the
    first to commit, then finds the conflict), and no savepoint is needed.
    """
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    claimed = session.scalar(
        insert(DeliveryClaim)
        .values(
            integration_id=integration_id,
            request_id=request_id,
            delivery_id=delivery_id,
            claimed_at=now,
        )
        .on_conflict_do_nothing(index_elements=["integration_id", "request_id"])
        .returning(DeliveryClaim.delivery_id)
    )
    if claimed is not None:
        return None
    earlier = session.scalar(
        select(DeliveryClaim.delivery_id).where(
            DeliveryClaim.integration_id == integration_id,
            DeliveryClaim.request_id == request_id,
        )
    )
    return earlier if earlier is not None else -1
