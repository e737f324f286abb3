"""Intent-named queries of incidents, their timelines and the deliveries that touched them.

Locks are taken where the caller decides on what it read. The receiver's hot path has its
own Core statements (app/store/receiver_rows.py); these serve people, jobs and the UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, literal, or_, select, true, tuple_
from sqlalchemy.orm import Session, selectinload

from app.domain.incident import Change
from app.domain.lifecycle import Status
from app.domain.severity import Severity
from app.store.models import Delivery, Incident, Service, TimelineEntry
from app.store.notify_models import DigestMember
from app.store.types import UTCDateTime


def apply_change(session: Session, incident: Incident, change: Change, at: datetime) -> None:
    """Write what `change_incident` decided onto a loaded incident: its new fields, and a
    timeline entry per note, stamped `at` (people's and jobs' changes; the receiver writes
    its own rows in app/store/receiver_rows.py)."""
    for name, value in change.fields.items():
        setattr(incident, name, value)
    for note in change.notes:
        session.add(
            TimelineEntry(
                incident_id=incident.id,
                at=at,
                kind=note.kind,
                actor=note.actor,
                message=note.message,
                data=note.data,
            )
        )


def find_incident(session: Session, incident_id: int, lock: bool = False) -> Incident | None:
    query = select(Incident).where(Incident.id == incident_id)
    return session.scalar(query.with_for_update() if lock else query)


def timeline_of(session: Session, incident_id: int) -> list[TimelineEntry]:
    return list(
        session.scalars(
            select(TimelineEntry)
            .where(TimelineEntry.incident_id == incident_id)
            .order_by(TimelineEntry.id)
        )
    )


def deliveries_of(session: Session, incident_id: int) -> list[Delivery]:
    """Deliveries that touched the incident: the ones that changed it or were judged on it."""
    via_timeline = select(TimelineEntry.delivery_id).where(
        TimelineEntry.incident_id == incident_id, TimelineEntry.delivery_id.is_not(None)
    )
    return list(
        session.scalars(
            select(Delivery)
            .where(or_(Delivery.incident_id == incident_id, Delivery.id.in_(via_timeline)))
            .order_by(Delivery.id)
        )
    )


def latest_integration_of(session: Session, incident_id: int) -> str | None:
    """The integration of the latest delivery that acted on the incident."""
    return session.scalar(
        select(Delivery.integration_id)
        .where(Delivery.incident_id == incident_id)
        .order_by(Delivery.id.desc())
        .limit(1)
    )


def open_incidents_matching(
    session: Session, service_ids: Sequence[int], title: str | None, number: int | None, limit: int
) -> list[Incident]:
    """Open incidents of these services, newest first: those whose title holds `title`
    (case-insensitive) or whose id is `number`, when either is given."""
    statement = (
        select(Incident)
        .where(Incident.status != Status.RESOLVED.value, Incident.service_id.in_(service_ids))
        .order_by(Incident.id.desc())
        .limit(limit)
    )
    if title:
        conditions: list[ColumnElement[bool]] = [Incident.title.ilike(f"%{title}%")]
        if number is not None:
            conditions.append(Incident.id == number)
        statement = statement.where(or_(*conditions))
    return list(session.scalars(statement))


def triggered_count(session: Session) -> int:
    """How many incidents are triggered (no one has acknowledged them), in every service."""
    query = select(func.count()).select_from(Incident)
    return int(session.scalar(query.where(Incident.status == Status.TRIGGERED.value)) or 0)


def ack_timeout_candidates(session: Session, acknowledged_before: datetime, limit: int) -> Any:
    """Acknowledged incidents of services with an acknowledgement timeout, acknowledged
    before the given time, oldest first: rows of (id, acknowledged_at, ack_timeout_minutes)."""
    return session.execute(
        select(Incident.id, Incident.acknowledged_at, Service.ack_timeout_minutes)
        .join(Service, Service.id == Incident.service_id)
        .where(
            Incident.status == Status.ACKNOWLEDGED.value,
            Service.ack_timeout_minutes > 0,
            Incident.acknowledged_at <= acknowledged_before,
        )
        .order_by(Incident.acknowledged_at)
        .limit(limit)
    ).all()


def lock_available(session: Session, incident_ids: Sequence[int]) -> list[Incident]:
    """These incidents, locked; those another transaction holds are skipped (SKIP LOCKED)."""
    return list(
        session.scalars(
            select(Incident).where(Incident.id.in_(incident_ids)).with_for_update(skip_locked=True)
        )
    )


def digest_members(session: Session, digest_id: str, top: int) -> tuple[int, list[Incident]]:
    """How many incidents a storm digest stands for (its digest_members rows), and the
    `top` of them with the most events."""
    members = select(DigestMember.incident_id).where(DigestMember.notification_id == digest_id)
    count = (
        session.scalar(
            select(func.count())
            .select_from(DigestMember)
            .where(DigestMember.notification_id == digest_id)
        )
        or 0
    )
    most = session.scalars(
        select(Incident)
        .where(Incident.id.in_(members))
        .order_by(Incident.event_count.desc(), Incident.id)
        .limit(top)
    )
    return count, list(most)


# ---------------------------------------------------------------- the incident list
#
# Sorts: "-id"/"id", "-last_event_at"/"last_event_at" (ties by id), and the segmented
# ones: "urgency" is the on-call order (triggered, then acknowledged, then resolved;
# critical first within each; newest first within that), "-severity" is critical first,
# then newest, and "severity" the reverse of that.

OPEN_STATUSES = (Status.TRIGGERED.value, Status.ACKNOWLEDGED.value)
STATUS_ORDER = (Status.TRIGGERED.value, Status.ACKNOWLEDGED.value, Status.RESOLVED.value)
SEVERITY_ORDER = tuple(severity.value for severity in Severity)  # critical first
SEGMENTED_SORTS = ("urgency", "-severity", "severity")
Segment = tuple[str | None, str]  # (status or None, severity)


@dataclass(frozen=True)
class IncidentQuery:
    """Which incidents a list holds, in the store's terms: values already checked by the
    caller (a status or "open"; "show", "hide" or "only" for test alerts) and the service
    already resolved to its id."""

    status: str | None = None
    severity: str | None = None
    service_id: int | None = None
    dedup_key: str | None = None
    # Searched in title, source, Sentry short id and dedup key; an issue id matches whole.
    text: str | None = None
    # A user's email; case does not matter.
    assignee: str | None = None
    test: str = "show"
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class IncidentRows:
    """Up to `limit` incidents in sort order, and whether more follow the last of them."""

    items: list[Incident]
    more: bool


def incident_conditions(wanted: IncidentQuery) -> list[ColumnElement[bool]]:
    """The WHERE conditions that select the incidents `wanted` describes."""
    conditions: list[ColumnElement[bool]] = []
    if wanted.status == "open":
        # Not IN (triggered, acknowledged): that reads two index ranges and sorts them;
        # "not resolved" is the same set and lets an index serve the order.
        conditions.append(Incident.status != Status.RESOLVED.value)
    elif wanted.status:
        conditions.append(Incident.status == wanted.status)
    if wanted.severity:
        conditions.append(Incident.severity == wanted.severity)
    if wanted.service_id is not None:
        conditions.append(Incident.service_id == wanted.service_id)
    if wanted.dedup_key:
        conditions.append(Incident.dedup_key == wanted.dedup_key)
    if wanted.text:
        pattern = f"%{escape_like(wanted.text)}%"
        conditions.append(
            or_(
                Incident.title.ilike(pattern, escape="\\"),
                Incident.source.ilike(pattern, escape="\\"),
                # Sentry's short id (CHECKOUT-77), as people say it, in any case.
                Incident.sentry_short_id.ilike(pattern, escape="\\"),
                Incident.dedup_key.ilike(pattern, escape="\\"),
                # An issue id is pasted whole (from Sentry's URL): matched exactly.
                Incident.sentry_issue_id == wanted.text,
            )
        )
    if wanted.assignee:
        conditions.append(func.lower(Incident.assignee) == wanted.assignee.strip().lower())
    if wanted.test == "hide":
        conditions.append(Incident.is_test.is_(false()))
    elif wanted.test == "only":
        conditions.append(Incident.is_test.is_(true()))
    if wanted.since:
        conditions.append(Incident.last_event_at >= wanted.since)
    if wanted.until:
        conditions.append(Incident.last_event_at < wanted.until)
    return conditions


def escape_like(text: str) -> str:
    """Text to match literally inside a LIKE pattern whose escape character is a backslash."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def sort_segments(wanted: IncidentQuery, sort: str) -> list[Segment]:
    """The segments of a segmented sort in page order, narrowed by the status/severity
    that `wanted` asks for."""
    severities = [s for s in SEVERITY_ORDER if wanted.severity in (None, s)]
    if sort == "severity":
        return [(None, severity) for severity in reversed(severities)]
    if sort == "-severity":
        return [(None, severity) for severity in severities]
    statuses = [s for s in STATUS_ORDER if _status_matches(wanted.status, s)]
    return [(status, severity) for status in statuses for severity in severities]


def _status_matches(wanted: str | None, status: str) -> bool:
    if wanted is None:
        return True
    return status in OPEN_STATUSES if wanted == "open" else status == wanted


def sort_key_of(sort: str, incident: Incident) -> Any:
    """The incident's value under the sort, as a cursor after it records it: its id, its
    last event time, or its segment (a list of status and/or severity)."""
    if sort in SEGMENTED_SORTS:
        return [incident.status, incident.severity] if sort == "urgency" else [incident.severity]
    return incident.id if sort.lstrip("-") == "id" else incident.last_event_at


def incidents_page(
    session: Session,
    wanted: IncidentQuery,
    sort: str,
    after: tuple[Any, int] | None,
    limit: int,
) -> IncidentRows:
    """Up to `limit` incidents that `wanted` selects in `sort` order, by keyset: those after
    the row whose (sort value, id) is `after` (stable under inserts). For a segmented sort
    the value is one of sort_segments(wanted, sort)."""
    query: Select[Incident] = select(Incident).options(selectinload(Incident.service))
    query = query.where(*incident_conditions(wanted))
    if sort in SEGMENTED_SORTS:
        rows = _segmented_rows(session, query, sort_segments(wanted, sort), sort, after, limit)
    else:
        rows = _keyset_rows(session, query, sort, after, limit)
    return IncidentRows(rows[:limit], len(rows) > limit)


def _keyset_rows(
    session: Session,
    query: Select[Incident],
    sort: str,
    after: tuple[Any, int] | None,
    limit: int,
) -> list[Incident]:
    descending = sort.startswith("-")
    column: Any = Incident.id if sort.lstrip("-") == "id" else Incident.last_event_at
    if after is not None:
        value, row_id = after
        if column is Incident.id:
            query = query.where(Incident.id < row_id if descending else Incident.id > row_id)
        else:
            key = tuple_(Incident.last_event_at, Incident.id)
            bound = tuple_(literal(value, UTCDateTime()), literal(row_id))
            query = query.where(key < bound if descending else key > bound)
    order: list[Any] = [column.desc() if descending else column.asc()]
    if column is not Incident.id:
        order.append(Incident.id.desc() if descending else Incident.id.asc())
    return list(session.scalars(query.order_by(*order).limit(limit + 1)))


# The urgency and severity orders rank text columns. Rather than sort every matching row
# by a computed rank, a page is read one segment at a time in rank order: one (status,
# severity) pair (urgency) or one severity, each in id order from the (status, severity,
# id) and (severity, id) indexes. A page costs at most one short query per segment (12 at
# most) and never a sort of the whole filtered set, on SQLite and PostgreSQL alike.


def _segmented_rows(
    session: Session,
    query: Select[Incident],
    segments: list[Segment],
    sort: str,
    after: tuple[Any, int] | None,
    limit: int,
) -> list[Incident]:
    ascending = sort == "severity"
    start, after_id = 0, None
    if after is not None:
        segment, after_id = after
        start = segments.index(segment)
    rows: list[Incident] = []
    for index in range(start, len(segments)):
        status, severity = segments[index]
        part = query.where(Incident.severity == severity)
        if status is not None:
            part = part.where(Incident.status == status)
        if index == start and after_id is not None:
            part = part.where(Incident.id > after_id if ascending else Incident.id < after_id)
        part = part.order_by(Incident.id.asc() if ascending else Incident.id.desc())
        rows.extend(session.scalars(part.limit(limit + 1 - len(rows))))
        if len(rows) > limit:
            break
    return rows
