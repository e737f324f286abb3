"""Incidents as people work them: find, list, acknowledge, resolve, reopen, annotate."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import Session

from app.domain.errors import BridgeError, IllegalTransition, InvalidInput, NotFound
from app.domain.incident import Assignment, PersonAction, change_incident
from app.domain.lifecycle import HumanAction, Status
from app.services.notification_documents import incident_fields
from app.services.notifications import queue_notifications
from app.services.write_back import enqueue_write_back
from app.store import incidents as store
from app.store import queries
from app.store.database import Database
from app.store.models import Delivery, Incident, TimelineEntry, User

# The orders are described in app/store/incidents.py ("urgency" is the on-call order).
SORTS = ("-id", "id", "-last_event_at", "last_event_at", "urgency", "-severity", "severity")
# `status` filter values: one status, or "open" (triggered and acknowledged).
STATUS_FILTERS = (*(status.value for status in Status), "open")
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
    # A user's email (the callers turn "me" into theirs); case does not matter.
    assignee: str | None = None
    # The bridge's test alerts: "show" (default), "hide" or "only".
    test: str = "show"


@dataclass(frozen=True)
class Page:
    items: Sequence[Any]
    next_cursor: str | None


# ---------------------------------------------------------------- keyset cursors


def encode_cursor(sort: str, value: Any, row_id: int) -> str:
    """A cursor after the row `row_id` whose sort value is `value`: the id itself for the
    id sorts, the time for the last_event_at sorts, the row's segment (a list of status
    and/or severity) for the urgency and severity sorts."""
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
        elif sort in store.SEGMENTED_SORTS:
            value = _segment_of_cursor(sort, value)
    except (ValueError, KeyError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "The cursor is not one this list gave out (or the sort changed since).",
            fields={"cursor": ["invalid cursor for this sort"]},
        ) from None
    return value, row_id


def _segment_of_cursor(sort: str, value: Any) -> store.Segment:
    if sort == "urgency":
        status, severity = value
        if status not in store.STATUS_ORDER:
            raise ValueError("unknown status")
    else:
        (severity,) = value
        status = None
    if severity not in store.SEVERITY_ORDER:
        raise ValueError("unknown severity")
    return status, severity


# ---------------------------------------------------------------- reading


def list_incidents(
    session: Session, filters: IncidentFilters, limit: int, cursor: str | None = None
) -> Page:
    """One page of incidents, newest first by default, by keyset (stable under inserts)."""
    if filters.sort not in SORTS:
        raise InvalidInput(f"Unknown sort {filters.sort!r}.", fields={"sort": [f"one of {SORTS}"]})
    if filters.status is not None and filters.status not in STATUS_FILTERS:
        raise InvalidInput(
            f"Unknown status {filters.status!r}.",
            fields={"status": [f"one of {STATUS_FILTERS}"]},
        )
    wanted = _wanted(session, filters)
    after = None
    if cursor:
        after = decode_cursor(cursor, filters.sort)
        segment = after[0]
        if filters.sort in store.SEGMENTED_SORTS and segment not in store.sort_segments(
            wanted, filters.sort
        ):
            raise InvalidInput(
                "The cursor is not one this list gave out (or the filters changed since).",
                fields={"cursor": ["invalid cursor for these filters"]},
            )
    rows = store.incidents_page(session, wanted, filters.sort, after, limit)
    next_cursor = None
    if rows.more:
        last = rows.items[-1]
        next_cursor = encode_cursor(filters.sort, store.sort_key_of(filters.sort, last), last.id)
    return Page(rows.items, next_cursor)


def count_triggered(session: Session) -> int:
    """How many incidents are triggered (no one has acknowledged them), in every service."""
    return store.triggered_count(session)


def _wanted(session: Session, filters: IncidentFilters) -> store.IncidentQuery:
    """The filters in the store's terms: the service named resolved to its id."""
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
        assignee=filters.assignee,
        test=filters.test,
        since=filters.since,
        until=filters.until,
    )


def filter_conditions(session: Session, filters: IncidentFilters) -> list[ColumnElement[bool]]:
    """The WHERE conditions of `filters`, for other listings (the CLI's) to share."""
    return store.incident_conditions(_wanted(session, filters))


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
    store.apply_change(session, incident, change, now)
    if action in (HumanAction.ACKNOWLEDGE, HumanAction.RESOLVE):
        # Write-back (when the integration asks for it) is a job row in this transaction.
        enqueue_write_back(session, incident, action.value, now)
    session.flush()
    if change.events:
        queue_notifications(session.connection(), incident_fields(incident), change.events, now)
    return incident


def assign_incident(
    session: Session, incident_id: int, user: str | None, actor: str, now: datetime
) -> Incident:
    """Assign the incident to an active user (by email, any case), or unassign it (None),
    with a timeline entry "Assigned to alice by bob". The same assignee again changes
    nothing. An unknown or deactivated user is refused, by name."""
    incident = get_incident(session, incident_id, lock=True)
    assignee = None if user is None else _assignable_user(session, user).email
    change = change_incident(incident_fields(incident), Assignment(assignee, actor), now, now)
    store.apply_change(session, incident, change, now)
    session.flush()
    return incident


_NAMED_USERS = 20


def _assignable_user(session: Session, name: str) -> User:
    wanted = name.strip().lower()
    found = session.scalar(select(User).where(User.email == wanted)) if wanted else None
    if found is None and wanted and "@" not in wanted:
        # "alice" for alice@example.com, when only one user's address begins so.
        pattern = f"{store.escape_like(wanted)}@%"
        named = list(session.scalars(select(User).where(User.email.like(pattern, escape="\\"))))
        found = named[0] if len(named) == 1 else None
    if found is not None and found.is_active:
        return found
    if found is not None:
        problem = f"User {wanted!r} is deactivated, so incidents cannot be assigned to them."
    else:
        known = list(
            session.scalars(
                select(User.email)
                .where(User.is_active.is_(true()))
                .order_by(User.email)
                .limit(_NAMED_USERS + 1)
            )
        )
        listed = ", ".join(known[:_NAMED_USERS]) + (", ..." if len(known) > _NAMED_USERS else "")
        problem = f"No user {wanted or name!r}. Assign to one of: {listed or '(no users yet)'}."
    raise InvalidInput(problem, fields={"user": ["unknown or deactivated user"]})


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


# ---------------------------------------------------------------- acting on several at once

MAX_BULK = 100


@dataclass(frozen=True)
class BulkOutcome:
    """What one id of a bulk action came to: the changed incident, or why not."""

    incident_id: int
    incident: Incident | None = None
    error: BridgeError | None = None


def act_on_incidents(
    database: Database,
    incident_ids: Sequence[int],
    action: HumanAction,
    actor: str,
    now: datetime,
) -> list[BulkOutcome]:
    """Acknowledge or resolve several incidents, each exactly as act_on_incident does it
    alone (same rules, messages, timeline entries, notifications and write-back), each in
    its own transaction: one that cannot be changed does not hold back the others."""
    if action not in (HumanAction.ACKNOWLEDGE, HumanAction.RESOLVE):
        raise InvalidInput(
            "Only acknowledge and resolve can be done to several incidents at once.",
            fields={"action": ["acknowledge or resolve"]},
        )
    unique = list(dict.fromkeys(incident_ids))
    if not unique or len(unique) > MAX_BULK:
        raise InvalidInput(
            f"Give between 1 and {MAX_BULK} incident ids.",
            fields={"ids": [f"between 1 and {MAX_BULK} ids"]},
        )
    outcomes: list[BulkOutcome] = []
    for incident_id in unique:
        try:
            with database.transaction() as session:
                incident = act_on_incident(session, incident_id, action, actor, now)
                _ = incident.service.name  # read while the session is open
        except (IllegalTransition, NotFound) as error:
            outcomes.append(BulkOutcome(incident_id, error=error))
        else:
            outcomes.append(BulkOutcome(incident_id, incident=incident))
    return outcomes
