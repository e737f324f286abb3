"""PagerDuty Events API v2: the incident's lifecycle on one PagerDuty incident.

Mapping (developer.pagerduty.com, "Send an Alert Event"):
  incident.triggered / reopened / severity_raised -> trigger (a trigger on an open alert
    adds to it and carries the new severity; after a resolve it opens a new one)
  incident.acknowledged -> acknowledge;  incident.resolved -> resolve
  incidents.digest -> one trigger with a dedup key of its own per digest
  test -> a trigger at severity info, resolved at once, so nobody is left paged
The dedup key is derived from the bridge's own key for the service's incident, so every
event about one Sentry issue lands on the same PagerDuty alert.
202 means accepted; 400 is an invalid event (permanent, PagerDuty's `errors` reported);
429 and 5xx are retried (PagerDuty's own retry table).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from app.channels import http, rendering
from app.channels.base import ChannelSettings, ChannelTarget, Message, SendResult
from app.channels.scrub import scrub, target_secrets

DEDUP_KEY_CHARS = 255
SUMMARY_CHARS = 1024
ACTIONS = {
    "incident.triggered": "trigger",
    "incident.reopened": "trigger",
    "incident.severity_raised": "trigger",
    "incident.acknowledged": "acknowledge",
    "incident.resolved": "resolve",
    "incidents.digest": "trigger",
    "test": "trigger",
}


def clip_dedup_key(key: str) -> str:
    """At most 255 characters; a longer key keeps its start and ends in a hash of the whole,
    so two long keys that share a prefix stay two PagerDuty alerts."""
    if len(key) <= DEDUP_KEY_CHARS:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return key[: DEDUP_KEY_CHARS - len(digest) - 1] + "-" + digest


def dedup_key(message: Message) -> str:
    service_id = rendering.service_of(message).get("id", "unknown")
    if message.type == "incidents.digest":
        # One digest per service and storm window; the notification id names that digest
        # (and stays the same when the same digest is retried).
        return clip_dedup_key(f"bridge-{service_id}-digest-{message.notification_id}")
    if message.type == "test":
        return clip_dedup_key(f"bridge-{service_id}-test-{message.notification_id}")
    incident = rendering.incident_of(message)
    key = incident.get("dedup_key") or incident.get("id") or message.notification_id
    return clip_dedup_key(f"bridge-{service_id}-{key}")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _severity(message: Message) -> str:
    if message.type == "test":
        return "info"
    if message.type == "incidents.digest":
        order = list(rendering.SEVERITY_WORDS)  # critical first
        found = [rendering.severity_of(item) for item in rendering.digest_incidents(message)]
        return min(found, key=order.index) if found else "error"
    return rendering.severity_of(rendering.incident_of(message))


def _details(message: Message) -> dict[str, Any]:
    details: dict[str, Any] = {"notification_id": message.notification_id, "type": message.type}
    if message.type == "incidents.digest":
        details["count"] = rendering.digest_count(message)
        details["titles"] = [
            str(item.get("title") or "")
            for item in rendering.digest_incidents(message)[: rendering.DIGEST_TITLES]
        ]
        return details
    if message.type == "test":
        details["message"] = message.document.get("message")
        return details
    incident = rendering.incident_of(message)
    for key in ("id", "status", "event_count", "first_seen", "last_seen", "culprit", "environment"):
        if incident.get(key) is not None:
            details[key] = incident[key]
    sentry = incident.get("sentry")
    if isinstance(sentry, dict):
        details["sentry"] = {k: v for k, v in sentry.items() if v is not None}
    return details


def build_event(
    message: Message, routing_key: str, settings: ChannelSettings, action: str | None = None
) -> dict[str, Any]:
    event_action = action or ACTIONS.get(message.type, "trigger")
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": event_action,
        "dedup_key": dedup_key(message),
    }
    if event_action != "trigger":
        return event  # acknowledge and resolve need nothing else (Events v2)
    incident = rendering.incident_of(message)
    payload: dict[str, Any] = {
        "summary": _clip(rendering.headline(message), SUMMARY_CHARS),
        "source": rendering.service_name(message),
        "severity": _severity(message),
        "timestamp": message.occurred_at.isoformat(),
        "custom_details": _details(message),
    }
    if incident.get("culprit"):
        payload["component"] = str(incident["culprit"])
    if incident.get("environment"):
        payload["group"] = str(incident["environment"])
    event["payload"] = payload
    event["client"] = rendering.PRODUCT
    if settings.public_base_url:
        event["client_url"] = settings.public_base_url
    event["links"] = [{"href": href, "text": text} for text, href in rendering.links(message)]
    return event


def _post(event: dict[str, Any], target: ChannelTarget, settings: ChannelSettings) -> SendResult:
    body = json.dumps(event).encode()
    answer = http.post(
        settings.pagerduty_events_url,
        body,
        {"Content-Type": "application/json"},
        settings.timeout_seconds,
    )
    if isinstance(answer, SendResult):
        return answer
    outcome = http.outcome_for_status(answer.status_code)
    if outcome == "sent":
        return SendResult("sent", status_code=answer.status_code)
    return SendResult(
        outcome,
        status_code=answer.status_code,
        error=f"PagerDuty answered HTTP {answer.status_code}: {_reason(answer.text, target)}",
        retry_after_seconds=answer.retry_after_seconds if outcome == "retry" else None,
    )


def _reason(text: str, target: ChannelTarget) -> str:
    """PagerDuty's own words: `message` and `errors` of its JSON answer, scrubbed."""
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        errors = answer.get("errors")
        words = [str(answer.get("message") or "")]
        if isinstance(errors, list):
            words += [str(item) for item in errors]
        text = "; ".join(word for word in words if word)
    return scrub(text, target_secrets(target), limit=300) or "no reason given"


def send(target: ChannelTarget, message: Message, settings: ChannelSettings) -> SendResult:
    if not target.routing_key:
        return SendResult("failed", error="the PagerDuty channel has no routing key")
    result = _post(build_event(message, target.routing_key, settings), target, settings)
    if message.type != "test" or result.outcome != "sent":
        return result
    resolved = _post(
        build_event(message, target.routing_key, settings, "resolve"), target, settings
    )
    if resolved.outcome == "sent":
        return result
    # The test reached PagerDuty (that is what it tests); say what is left to clean up.
    return SendResult(
        "sent",
        status_code=result.status_code,
        error=f"test alert sent, but resolving it failed ({resolved.error}); "
        "resolve it in PagerDuty",
    )
