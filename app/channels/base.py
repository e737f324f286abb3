"""STUB until merge (issue 14): the adapters helper's app/channels/base.py replaces this.

The interface between the outbound adapters and the notification core, exactly as agreed.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

CHANNEL_KINDS = ("webhook", "slack", "email", "pagerduty", "apprise")


@dataclass(frozen=True)
class ChannelTarget:
    """Where and how one channel delivers; decrypted secrets, never logged."""

    kind: str  # one of CHANNEL_KINDS
    name: str
    url: str | None = None  # webhook URL, Slack incoming-webhook URL, Apprise URL
    recipients: tuple[str, ...] = ()  # email addresses
    routing_key: str | None = None  # PagerDuty Events v2 integration key
    secret: str | None = None  # webhook signing secret "whsec_<base64>"


@dataclass(frozen=True)
class Message:
    """One notification, rendered by each adapter in its own way."""

    notification_id: str  # stable unique id; the webhook-id; retries reuse it
    type: str
    occurred_at: datetime  # aware UTC
    document: dict[str, Any]  # the webhook JSON body exactly as issue 14 lists it
    ack_url: str | None = None  # signed single-use acknowledge link (confirmation page)


@dataclass(frozen=True)
class ChannelSettings:
    """Process-wide settings the adapters need (from config.settings)."""

    timeout_seconds: float = 10.0
    smtp_url: str | None = None
    smtp_from: str | None = None
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    public_base_url: str | None = None


Outcome = Literal["sent", "retry", "failed"]


@dataclass(frozen=True)
class SendResult:
    """What one attempt came to, in our own words (no secrets, no URLs, no remote bodies
    beyond a short sanitised excerpt)."""

    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    retry_after_seconds: float | None = None
    latency_ms: float = 0.0
