"""What a notification says, in words, for the adapters that write for people.

Slack, email and Apprise (and PagerDuty's summary) tell the same story; it is written
once here. Documents come from the core and are read defensively (`.get`): a missing
field makes a shorter message, never a failed send.
"""

from __future__ import annotations

from typing import Any

from app.channels.base import Message

PRODUCT = "Sentry Incident Bridge"
SEVERITY_WORDS = {"critical": "Critical", "error": "Error", "warning": "Warning", "info": "Info"}
EVENT_WORDS = {
    "incident.triggered": "New incident",
    "incident.reopened": "Incident reopened",
    "incident.severity_raised": "Severity raised",
    "incident.acknowledged": "Incident acknowledged",
    "incident.resolved": "Incident resolved",
    "incidents.digest": "Many new incidents",
    "test": "Test notification",
}
DIGEST_TITLES = 10  # the top titles a digest names; the link lists them all


def incident_of(message: Message) -> dict[str, Any]:
    incident = message.document.get("incident")
    return incident if isinstance(incident, dict) else {}


def service_of(message: Message) -> dict[str, Any]:
    service = message.document.get("service") or incident_of(message).get("service")
    return service if isinstance(service, dict) else {}


def service_name(message: Message) -> str:
    return str(service_of(message).get("name") or "unknown service")


def severity_of(incident: dict[str, Any]) -> str:
    severity = str(incident.get("severity") or "error").lower()
    return severity if severity in SEVERITY_WORDS else "error"


def severity_words(incident: dict[str, Any]) -> str:
    return SEVERITY_WORDS[severity_of(incident)]


def event_words(message: Message) -> str:
    return EVENT_WORDS.get(message.type, message.type)


def digest_incidents(message: Message) -> list[dict[str, Any]]:
    items = message.document.get("incidents")
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def digest_count(message: Message) -> int:
    count = message.document.get("count")
    return count if isinstance(count, int) else len(digest_incidents(message))


def headline(message: Message) -> str:
    """One line: `[CRITICAL] checkout: TypeError: cart is undefined` (the email subject).

    Whitespace runs (a Sentry title may hold newlines) become one space: a header value
    with a line break would be refused by the email package, and is ugly everywhere else.
    """
    return " ".join(_headline(message).split())


def _headline(message: Message) -> str:
    name = service_name(message)
    if message.type == "incidents.digest":
        return f"[DIGEST] {name}: {digest_count(message)} new incidents"
    if message.type == "test":
        return f"[TEST] {name}: test notification from {PRODUCT}"
    incident = incident_of(message)
    title = str(incident.get("title") or "untitled incident")
    tag = severity_of(incident).upper()
    if message.type == "incident.resolved":
        tag = "RESOLVED"
    elif message.type == "incident.acknowledged":
        tag = "ACKNOWLEDGED"
    return f"[{tag}] {name}: {title}"


def links(message: Message) -> list[tuple[str, str]]:
    """(text, href) of every link a message carries, the incident page first."""
    found: list[tuple[str, str]] = []
    if message.type == "incidents.digest":
        if message.document.get("url"):
            found.append(("Open the incident list", str(message.document["url"])))
        return found
    incident = incident_of(message)
    if incident.get("url"):
        found.append(("Open the incident", str(incident["url"])))
    sentry = incident.get("sentry")
    if isinstance(sentry, dict) and sentry.get("issue_url"):
        short_id = sentry.get("short_id")
        text = f"Sentry issue {short_id}" if short_id else "Sentry issue"
        found.append((text, str(sentry["issue_url"])))
    if message.ack_url:
        found.append(("Acknowledge", message.ack_url))
    return found


def facts(message: Message) -> list[tuple[str, str]]:
    """(label, value) pairs describing an incident, in reading order."""
    incident = incident_of(message)
    pairs = [
        ("Severity", severity_words(incident)),
        ("Status", str(incident.get("status") or "unknown").capitalize()),
        ("Service", service_name(message)),
        ("Events", str(incident.get("event_count", "?"))),
    ]
    for label, key in (("Culprit", "culprit"), ("Environment", "environment")):
        if incident.get(key):
            pairs.append((label, str(incident[key])))
    for label, key in (("First seen", "first_seen"), ("Last seen", "last_seen")):
        if incident.get(key):
            pairs.append((label, str(incident[key])))
    return pairs


def text_body(message: Message) -> str:
    """The plain-text message (email text part, Apprise body)."""
    lines = [headline(message), ""]
    if message.type == "incidents.digest":
        count = digest_count(message)
        lines.append(
            f"{count} new incidents in {service_name(message)} arrived in a short time; "
            "they are listed here instead of one message each."
        )
        for item in digest_incidents(message)[:DIGEST_TITLES]:
            severity = severity_words(item)
            lines.append(f"- [{severity}] {item.get('title') or 'untitled incident'}")
        if count > DIGEST_TITLES:
            lines.append(f"… and {count - DIGEST_TITLES} more")
    elif message.type == "test":
        lines.append(str(message.document.get("message") or f"A test from {PRODUCT}."))
    else:
        lines.append(f"{event_words(message)}: {incident_of(message).get('title') or ''}")
        lines += [f"{label}: {value}" for label, value in facts(message)]
    lines.append("")
    lines += [f"{text}: {href}" for text, href in links(message)]
    return "\n".join(lines).rstrip() + "\n"
