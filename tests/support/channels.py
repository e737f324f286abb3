"""Notification documents and settings for the channel adapters' tests.

The documents have the shape issue 14 gives the webhook body (and app/channels/base.py
repeats): what the notification core hands every adapter.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from app.channels.base import ChannelSettings, Message

OCCURRED_AT = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
SERVICE = {"id": 7, "name": "checkout"}


def incident(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": 42,
        "url": "https://bridge.example.com/incidents/42",
        "dedup_key": "sentry:acme:1234567890",
        "title": "TypeError: cart is undefined",
        "severity": "critical",
        "status": "triggered",
        "service": dict(SERVICE),
        "event_count": 1287,
        "first_seen": "2025-03-14T09:20:00+00:00",
        "last_seen": "2025-03-14T09:26:50+00:00",
        "culprit": "app/cart.js in updateTotals",
        "environment": "production",
        "sentry": {
            "issue_url": "https://acme.sentry.io/issues/1234567890/",
            "short_id": "CHECKOUT-3F",
            "project": "checkout-web",
        },
    }
    document.update(changes)
    return document


def incident_message(
    type: str = "incident.triggered",
    *,
    notification_id: str | None = None,
    ack_url: str | None = "https://bridge.example.com/ack/eyJpbmNpZGVudCI6NDJ9.sig",
    **changes: Any,
) -> Message:
    notification_id = notification_id or f"ntf_{uuid.uuid4().hex}"
    document = {
        "id": notification_id,
        "type": type,
        "occurred_at": OCCURRED_AT.isoformat(),
        "incident": incident(**changes),
    }
    return Message(notification_id, type, OCCURRED_AT, document, ack_url)


def digest_message(count: int = 14) -> Message:
    notification_id = f"ntf_{uuid.uuid4().hex}"
    items = [
        incident(id=100 + n, title=f"Error {n}: timeout talking to payments", severity="error")
        for n in range(count)
    ]
    if count > 3:
        items[3]["severity"] = "critical"
    document = {
        "id": notification_id,
        "type": "incidents.digest",
        "occurred_at": OCCURRED_AT.isoformat(),
        "service": dict(SERVICE),
        "count": count,
        "incidents": items,
        "url": "https://bridge.example.com/incidents?service=checkout&status=triggered",
    }
    return Message(notification_id, "incidents.digest", OCCURRED_AT, document)


def channel_test_message() -> Message:
    notification_id = f"ntf_{uuid.uuid4().hex}"
    document = {
        "id": notification_id,
        "type": "test",
        "occurred_at": OCCURRED_AT.isoformat(),
        "service": dict(SERVICE),
        "message": "This is a test notification for the checkout channel.",
    }
    return Message(notification_id, "test", OCCURRED_AT, document)


def channel_settings(**changes: Any) -> ChannelSettings:
    values: dict[str, Any] = {
        "timeout_seconds": 2.0,
        "public_base_url": "https://bridge.example.com",
    }
    values.update(changes)
    return ChannelSettings(**values)
