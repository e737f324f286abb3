"""What one Sentry delivery tells an incident, as `change_incident` takes it, and when.

Pure: the alert read from the payload, the lifecycle's decision and the delivery's own
times come in as arguments.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from app.domain.alerts import Alert, Intent, parse_time
from app.domain.incident import SentryNews
from app.domain.lifecycle import Decision


def news_of(decision: Decision, alert: Alert) -> SentryNews:
    """The alert, with the step the lifecycle decided for it, as a cause of change."""
    return SentryNews(
        step=decision.step,
        severity=alert.severity.value,
        title=alert.title,
        source=alert.source,
        dedup_key=alert.dedup_key,
        resource=alert.resource,
        action=alert.action,
        actor=alert.actor,
        assignee=alert.assignee,
        comment=alert.comment,
        note_kind=alert.note_kind,
        note_data=alert.note_data,
        substatus=alert.substatus,
        is_latest_event=decision.is_latest_event,
        links=sentry_links(alert),
        names_project=alert.project is not None and alert.project_name is not None,
        facts=sentry_facts(alert),
        is_test=alert.is_test,
    )


def sentry_facts(alert: Alert) -> dict[str, Any]:
    """What the payload says of the issue or event, as incident columns (an absent one, or
    tags a format does not carry, never erases what an earlier delivery said)."""
    facts = {
        "culprit": alert.culprit,
        "environment": alert.environment,
        "release": alert.release,
        "platform": alert.platform,
        "tags": alert.tags or None,
        "sentry_count": alert.count,
        "sentry_user_count": alert.user_count,
        "event_at": alert.occurred_at,
    }
    return {name: value for name, value in facts.items() if value is not None}


def sentry_links(alert: Alert) -> dict[str, str]:
    """The Sentry identifiers this delivery names (an absent one never erases a known one)."""
    links = {
        "sentry_issue_id": alert.issue_id,
        "sentry_short_id": alert.short_id,
        "sentry_issue_url": alert.issue_url,
        "sentry_project": alert.project,
    }
    return {name: value for name, value in links.items() if value}


def news_time(alert: Alert, hook_timestamp: str | None, received_at: datetime) -> datetime:
    """When this delivery's news happened, by the sender's own clock (never the future).

    Sentry-Hook-Timestamp is whole seconds, cut down from the send time; the end of that
    second is the latest the news can be, and so the reading that never calls a genuine
    delivery stale. Without it, the payload's own time (lastSeen, event timestamp).
    """
    hook_time = parse_time(hook_timestamp)
    if hook_time is not None:
        at = hook_time + timedelta(microseconds=999_999)
        # The header is not signed, the payload is: news of an event is never newer than
        # the event the payload names, so a captured body re-sent with a fresh header
        # stays as old as it is (a status change names no time of its own: SPEC 3.4).
        if alert.intent is Intent.TRIGGER and alert.occurred_at is not None:
            at = min(at, alert.occurred_at)
    else:
        at = alert.occurred_at or received_at
    return min(at, received_at)
