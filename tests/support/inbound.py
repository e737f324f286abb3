"""InboundDelivery values as the web layer would make them from a Sentry request."""

from __future__ import annotations

from datetime import UTC, datetime

from app.services.delivery_records import InboundDelivery
from tests.support.integrations import MadeIntegration
from tests.support.payloads import Delivery, build, load, seen_at


def inbound_for(integration: MadeIntegration, action: str, at: int) -> InboundDelivery:
    """A signed integration `issue.<action>` webhook sent at `at` (epoch seconds)."""
    name = {
        "created": "integration_issue_created",
        "resolved": "integration_issue_resolved",
        "unresolved": "integration_issue_unresolved",
    }
    resource, payload = load(name[action])
    if action != "resolved":  # each event moves lastSeen (a status change does not)
        seen_at(payload, at)
    delivery = build(payload, resource=resource, secret=integration.secret, timestamp=at)
    return inbound_from(integration, delivery)


def inbound_from(integration: MadeIntegration, delivery: Delivery) -> InboundDelivery:
    """The InboundDelivery the webhook would read from this request to the integration."""
    headers = delivery.headers
    return InboundDelivery(
        integration_id=integration.id,
        body=delivery.body,
        received_at=datetime.now(UTC),
        content_length=len(delivery.body),
        content_type=headers.get("Content-Type"),
        request_id=headers.get("Request-ID"),
        hook_resource=headers.get("Sentry-Hook-Resource"),
        hook_timestamp=headers.get("Sentry-Hook-Timestamp"),
        signature=headers.get("Sentry-Hook-Signature"),
        user_agent=headers.get("User-Agent"),
    )
