"""Deliveries for the inspector: list by keyset, show one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain.errors import NotFound
from app.services.incidents import Page, decode_cursor, encode_cursor
from app.store.models import Delivery


@dataclass(frozen=True)
class DeliveryFilters:
    integration_id: str | None = None
    decision: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_deliveries(
    session: Session, filters: DeliveryFilters, limit: int, cursor: str | None = None
) -> Page:
    """Newest deliveries first, one page at a time."""
    query = select(Delivery)
    if filters.integration_id:
        query = query.where(Delivery.integration_id == filters.integration_id)
    if filters.decision:
        query = query.where(Delivery.decision == filters.decision)
    if filters.since:
        query = query.where(Delivery.received_at >= filters.since)
    if filters.until:
        query = query.where(Delivery.received_at < filters.until)
    if cursor:
        _value, row_id = decode_cursor(cursor, "-id")
        query = query.where(Delivery.id < row_id)
    rows = list(session.scalars(query.order_by(Delivery.id.desc()).limit(limit + 1)))
    items = rows[:limit]
    next_cursor = encode_cursor("-id", items[-1].id, items[-1].id) if len(rows) > limit else None
    return Page(items, next_cursor)


def get_delivery(session: Session, delivery_id: int) -> Delivery:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound(f"No delivery with id {delivery_id}.")
    return delivery
