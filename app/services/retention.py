"""Retention: old deliveries and finished jobs go; incidents and their timelines stay."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.store.models import Delivery, DeliveryBodyClaim, DeliveryClaim, SentryJob


def prune_deliveries(session: Session, older_than: datetime, batch_size: int = 5000) -> int:
    """Delete up to `batch_size` deliveries received before `older_than`; returns how many."""
    ids = list(
        session.scalars(
            select(Delivery.id)
            .where(Delivery.received_at < older_than)
            .order_by(Delivery.id)
            .limit(batch_size)
        )
    )
    if not ids:
        return 0
    session.execute(delete(DeliveryClaim).where(DeliveryClaim.delivery_id.in_(ids)))
    # A signed body's hash is kept as long as its delivery: past that, the body's own
    # time still keeps a re-sent event old (ingest._delivery_time).
    session.execute(delete(DeliveryBodyClaim).where(DeliveryBodyClaim.delivery_id.in_(ids)))
    session.execute(delete(Delivery).where(Delivery.id.in_(ids)))
    return len(ids)


def prune_finished_jobs(session: Session, older_than: datetime, batch_size: int = 5000) -> int:
    """Delete Sentry outbox jobs that finished (done or failed) before `older_than`."""
    ids = list(
        session.scalars(
            select(SentryJob.id)
            .where(SentryJob.status.in_(("done", "failed")), SentryJob.updated_at < older_than)
            .order_by(SentryJob.id)
            .limit(batch_size)
        )
    )
    if ids:
        session.execute(delete(SentryJob).where(SentryJob.id.in_(ids)))
    return len(ids)
