"""Intent-named queries. Locks are taken where a decision depends on what was read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.domain.lifecycle import Status
from app.store.models import Delivery, DeliveryClaim, Incident, Integration, Service


def get_integration(session: Session, integration_id: str) -> Integration | None:
    return session.get(Integration, integration_id)


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
    return session.scalar(
        select(Incident)
        .where(
            Incident.service_id == service_id,
            Incident.dedup_key == dedup_key,
            Incident.status == Status.RESOLVED.value,
        )
        .order_by(Incident.id.desc())
        .limit(1)
        .with_for_update()
    )


def claim_request_id(
    session: Session, integration_id: str, request_id: str, delivery_id: int, now: datetime
) -> int | None:
    """Claim Sentry's Request-ID for this delivery; the id of the earlier claimant if taken.

    The claim is a primary-key insert, so two concurrent deliveries of one Request-ID
    cannot both win: on PostgreSQL the second waits for the first to commit, then fails.
    """
    try:
        with session.begin_nested():
            session.add(
                DeliveryClaim(
                    integration_id=integration_id,
                    request_id=request_id,
                    delivery_id=delivery_id,
                    claimed_at=now,
                )
            )
    except IntegrityError:
        claim = session.get(DeliveryClaim, (integration_id, request_id))
        return claim.delivery_id if claim is not None else -1
    return None
