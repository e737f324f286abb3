"""The JSON documents notifications carry (the webhook body of issue 14), and the Message
a channel adapter gets for a claimed notification."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from app.channels.base import Message

# Types whose message offers the acknowledge link: the incident may still need someone.
ACKNOWLEDGEABLE = frozenset({"incident.triggered", "incident.reopened", "incident.severity_raised"})


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def incident_document(fields: Mapping[str, Any], service_name: str) -> dict[str, Any]:
    """The `incident` object of a notification, from the incident's columns.

    `url` is filled when the message is built (the public base URL is the sender's).
    """
    enrichment = fields.get("enrichment") or {}
    return {
        "id": fields["id"],
        "url": None,
        "dedup_key": fields["dedup_key"],
        "title": fields["title"],
        "severity": fields["severity"],
        "status": fields["status"],
        "service": {"id": fields["service_id"], "name": service_name},
        "event_count": fields["event_count"],
        "first_seen": _iso(fields["first_event_at"]),
        "last_seen": _iso(fields["last_event_at"]),
        # What the payload said, else what enrichment fetched.
        "culprit": fields.get("culprit") or enrichment.get("culprit"),
        "environment": fields.get("environment") or enrichment.get("environment"),
        "sentry": {
            "issue_url": fields.get("sentry_issue_url"),
            "short_id": fields.get("sentry_short_id"),
            "project": fields.get("sentry_project"),
        },
    }


def incident_fields(incident: Any) -> dict[str, Any]:
    """An ORM incident's columns, as incident_document reads them."""
    return {column.key: getattr(incident, column.key) for column in incident.__table__.columns}


def incident_url(base_url: str, incident_id: int) -> str:
    return f"{base_url}/incidents/{incident_id}"


def list_url(base_url: str, service_name: str) -> str:
    return f"{base_url}/incidents?" + urlencode({"service": service_name, "status": "triggered"})


def build_message(
    notification_id: str,
    type_: str,
    occurred_at: datetime,
    stored: Mapping[str, Any],
    base_url: str,
    ack_url: str | None,
) -> Message:
    """The message as the adapters get it: the stored document with its id, type, time and
    links filled in (retries build the same body, with the same id)."""
    document: dict[str, Any] = {
        "id": notification_id,
        "type": type_,
        "occurred_at": occurred_at.isoformat(),
        **{k: v for k, v in stored.items() if k not in ("id", "type", "occurred_at")},
    }
    incident = document.get("incident")
    if isinstance(incident, dict):
        document["incident"] = {**incident, "url": incident_url(base_url, incident["id"])}
    for item in document.get("incidents") or []:
        item["url"] = incident_url(base_url, item["id"])
    if type_ == "incidents.digest":
        document["url"] = list_url(base_url, document["service"]["name"])
    ack_url = ack_url if type_ in ACKNOWLEDGEABLE else None
    if ack_url is not None:
        # The webhook's body is this document: without it, a webhook message would be the
        # one kind that carried no acknowledge link.
        document["ack_url"] = ack_url
    return Message(
        notification_id=notification_id,
        type=type_,
        occurred_at=occurred_at,
        document=document,
        ack_url=ack_url,
    )
