"""prune_deliveries: old deliveries go, incidents and their timelines stay."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.store.models import Delivery, DeliveryClaim


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
    session.execute(delete(Delivery).where(Delivery.id.in_(ids)))
    return len(ids)
