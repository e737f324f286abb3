"""The interface between the outbound adapters (app/channels) and the notification core.

Both sides code against exactly these names (issue 14); nothing else belongs here.
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
    type: str  # incident.triggered | incident.reopened | incident.severity_raised
    # | incident.acknowledged | incident.resolved | incidents.digest | test
    occurred_at: datetime  # aware UTC
    document: dict[str, Any]  # the webhook JSON body exactly as issue 14 lists it:
    # {"id","type","occurred_at","incident":{"id","url","dedup_key",
    #  "title","severity","status","service":{"id","name"},
    #  "event_count","first_seen","last_seen","culprit",
    #  "environment","sentry":{"issue_url","short_id","project"}}}
    # digest: {"id","type","occurred_at","service":{"id","name"},
    #  "count","incidents":[<incident objects>],"url": <filtered list URL>}
    # test: {"id","type":"test","occurred_at","service":{...},"message"}
    ack_url: str | None = None  # signed single-use acknowledge link (confirmation page)


@dataclass(frozen=True)
class ChannelSettings:
    """Process-wide settings the adapters need (from config.settings)."""

    timeout_seconds: float = 10.0
    smtp_url: str | None = None  # smtp://, smtp+starttls://, smtps://user:pass@host:port
    smtp_from: str | None = None
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    public_base_url: str | None = None


Outcome = Literal["sent", "retry", "failed"]


@dataclass(frozen=True)
class SendResult:
    """What one attempt came to, in our own words (no secrets, no URLs, no remote bodies
    beyond a short sanitised excerpt)."""

    outcome: Outcome  # sent; retry = transient (timeout, connection error,
    # 5xx, 429); failed = permanent (other 4xx, bad config)
    status_code: int | None = None  # HTTP status or SMTP reply code when there was one
    error: str | None = None  # human message, secret-free
    retry_after_seconds: float | None = None  # from Retry-After when the receiver gave one
    latency_ms: float = 0.0
