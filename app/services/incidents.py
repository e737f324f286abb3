"""Incidents as people work them: find, list, acknowledge, resolve, reopen, annotate."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.domain.errors import IllegalTransition, InvalidInput, NotFound
from app.domain.incident import PersonAction, change_incident
from app.domain.lifecycle import HumanAction
from app.services.notification_documents import incident_fields
from app.services.notifications import queue_notifications
from app.services.write_back import enqueue_write_back
from app.store import incidents as store
from app.store import queries
from app.store.models import Delivery, Incident, TimelineEntry

SORTS = ("-id", "id", "-last_event_at", "last_event_at")
MAX_NOTE_LENGTH = 10_000


@dataclass(frozen=True)
class IncidentFilters:
    status: str | None = None
    severity: str | None = None
    service: str | None = None
    dedup_key: str | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    sort: str = "-id"


@dataclass(frozen=True)
class Page:
    items: Sequence[Any]
    next_cursor: str | None


# ---------------------------------------------------------------- keyset cursors


def encode_cursor(sort: str, value: Any, row_id: int) -> str:
    document = {"s": sort, "v": value.isoformat() if isinstance(value, datetime) else value}
    document["id"] = row_id
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, int]:
    """(sort value, id) of a cursor made by encode_cursor for the same sort."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        document = json.loads(base64.urlsafe_b64decode(padded.encode()))
        row_id = int(document["id"])
        value = document["v"]
        if document["s"] != sort:
            raise ValueError("sort changed")
        # A forged cursor must not reach the database with what it cannot bind (a 500).
        if not -(2**31) <= row_id < 2**31:  # incidents.id is an INTEGER column
            raise ValueError("id out of range")
        if sort.lstrip("-") == "last_event_at":
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError("naive time")
    except (ValueError, KeyError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "The cursor is not one this list gave out (or the sort changed since).",
            fields={"cursor": ["invalid cursor for this sort"]},
        ) from None
    return value, row_id


# ---------------------------------------------------------------- reading


def list_incidents(
    session: Session, filters: IncidentFilters, limit: int, cursor: str | None = None
) -> Page:
    """One page of incidents, newest first by default, by keyset (stable under inserts)."""
    if filters.sort not in SORTS:
        raise InvalidInput(f"Unknown sort {filters.sort!r}.", fields={"sort": [f"one of {SORTS}"]})
    wanted = _wanted(session, filters)
    after = decode_cursor(cursor, filters.sort) if cursor else None
    rows = store.incidents_page(session, wanted, filters.sort, after, limit + 1)
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        value = last.id if filters.sort.lstrip("-") == "id" else last.last_event_at
        next_cursor = encode_cursor(filters.sort, value, last.id)
    return Page(items, next_cursor)


def _wanted(session: Session, filters: IncidentFilters) -> store.IncidentQuery:
    service_id = None
    if filters.service:
        service = queries.get_service_by_name(session, filters.service)
        if service is None:
            raise InvalidInput(
                f"No service named {filters.service!r}.",
                fields={"service": ["unknown service"]},
            )
        service_id = service.id
    return store.IncidentQuery(
        status=filters.status,
        severity=filters.severity,
        service_id=service_id,
        dedup_key=filters.dedup_key,
        text=filters.text,
        since=filters.since,
        until=filters.until,
    )


def get_incident(session: Session, incident_id: int, lock: bool = False) -> Incident:
    incident = store.find_incident(session, incident_id, lock)
    if incident is None:
        raise NotFound(f"No incident with id {incident_id}.")
    return incident


def incident_timeline(session: Session, incident_id: int) -> list[TimelineEntry]:
    return store.timeline_of(session, incident_id)


def incident_deliveries(session: Session, incident_id: int) -> list[Delivery]:
    """Deliveries that touched the incident: the ones that changed it or were judged on it."""
    return store.deliveries_of(session, incident_id)


# ---------------------------------------------------------------- people's actions


def act_on_incident(
    session: Session,
    incident_id: int,
    action: HumanAction,
    actor: str,
    now: datetime,
    via: str | None = None,
) -> Incident:
    """Acknowledge, resolve or reopen an incident for a person (or a signed link), with a
    timeline entry and the notifications its events call for."""
    incident = get_incident(session, incident_id, lock=True)
    if action is HumanAction.REOPEN:
        other = queries.find_open_incident(session, incident.service_id, incident.dedup_key)
        if other is not None and other.id != incident.id:
            raise IllegalTransition(
                f"Incident {other.id} is already open for {incident.dedup_key}; work that one "
                "instead of reopening this one.",
                open_incident_id=other.id,
            )
    change = change_incident(incident_fields(incident), PersonAction(action, actor, via), now, now)
    for name, value in change.fields.items():
        setattr(incident, name, value)
    for note in change.notes:
        session.add(
            TimelineEntry(
                incident_id=incident.id,
                at=now,
                kind=note.kind,
                actor=note.actor,
                message=note.message,
                data=note.data,
            )
        )
    if action in (HumanAction.ACKNOWLEDGE, HumanAction.RESOLVE):
        # Write-back (when the integration asks for it) is a job row in this transaction.
        enqueue_write_back(session, incident, action.value, now)
    session.flush()
    if change.events:
        queue_notifications(session.connection(), incident_fields(incident), change.events, now)
    return incident


def add_note(
    session: Session, incident_id: int, actor: str, text: str, now: datetime
) -> TimelineEntry:
    """Add a person's note to the incident's timeline."""
    incident = get_incident(session, incident_id)
    text = text.strip()
    if not text or len(text) > MAX_NOTE_LENGTH:
        raise InvalidInput(
            "A note needs text, at most 10000 characters.",
            fields={"text": [f"between 1 and {MAX_NOTE_LENGTH} characters"]},
        )
    entry = TimelineEntry(
        incident_id=incident.id, at=now, kind="note", actor=actor, message=text, data=None
    )
    session.add(entry)
    incident.updated_at = now
    session.flush()
    return entry
