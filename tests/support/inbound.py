"""InboundDelivery values as the web layer would make them from a Sentry request."""

from __future__ import annotations

from datetime import UTC, datetime

from app.services.ingest import InboundDelivery
from tests.conftest import MadeIntegration
from tests.support.payloads import build


def inbound_for(integration: MadeIntegration, action: str, at: int) -> InboundDelivery:
    """A signed integration `issue.<action>` webhook sent at `at` (epoch seconds)."""
    name = {
        "created": "integration_issue_created",
        "resolved": "integration_issue_resolved",
        "unresolved": "integration_issue_unresolved",
    }
    delivery = build(name[action], secret=integration.secret, timestamp=at)
    headers = delivery.headers
    return InboundDelivery(
        integration_id=integration.id,
        body=delivery.body,
        received_at=datetime.now(UTC),
        content_type=headers["Content-Type"],
        request_id=headers["Request-ID"],
        hook_resource=headers["Sentry-Hook-Resource"],
        hook_timestamp=headers["Sentry-Hook-Timestamp"],
        signature=headers.get("Sentry-Hook-Signature"),
    )
