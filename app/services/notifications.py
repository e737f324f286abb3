"""The notification outbox, written with the incident change that causes it (SPEC 7).

`queue_notifications` runs inside the delivery's (or the person's) transaction: the rows
commit with the change or not at all, so nothing is sent before commit and nothing is lost
after it. On PostgreSQL the INSERT and a NOTIFY are one statement: the jobs process,
LISTENing, wakes when the transaction commits. It is on the ingest hot path, so it speaks
SQLAlchemy Core like app/store/receiver_rows.py, and costs nothing when no event happened:
  - one SELECT of the service's enabled channels (locking the service row for a new
    incident on PostgreSQL, so concurrent openers count each other for storm control);
  - when a channel wants the event: one SELECT of the storm count and active silences;
  - one multi-row INSERT (+NOTIFY) for every channel; a held notification also writes
    its timeline entries; an incident suppressed by a storm looks for (and locks) its
    channels' waiting digests, and its digest_members rows ride on that INSERT.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, func, literal, select, text, true

from app.domain.incident import IncidentEvent
from app.domain.notify import (
    DIGEST_TYPE,
    ChannelRule,
    IncidentFacts,
    Route,
    SilenceRule,
    StormRule,
    is_storm,
    notification_type,
    parse_events,
    plan_notifications,
)
from app.services.notification_documents import incident_document
from app.store.models import Incident, Service, TimelineEntry
from app.store.notify_models import DigestMember, Notification, NotificationChannel, Silence

WAKE_CHANNEL = "bridge_notifications"
NOTIFIER = "Notifications"

_channels: Table = NotificationChannel.__table__  # type: ignore[assignment]
_notifications: Table = Notification.__table__  # type: ignore[assignment]
_silences: Table = Silence.__table__  # type: ignore[assignment]
_digest_members: Table = DigestMember.__table__  # type: ignore[assignment]
_services: Table = Service.__table__  # type: ignore[assignment]
_incidents: Table = Incident.__table__  # type: ignore[assignment]
_timeline: Table = TimelineEntry.__table__  # type: ignore[assignment]


def _select_channels(lock_service: bool) -> Any:
    """The service's enabled channels; with none, one row of the service alone (its paging
    columns are what escalations need, in the same round trip)."""
    query = (
        select(
            _channels.c.id,
            _channels.c.min_severity,
            _channels.c.events,
            _services.c.name.label("service_name"),
            _services.c.storm_threshold,
            _services.c.storm_window_minutes,
            _services.c.escalation_policy_id,
            _services.c.page_min_severity,
        )
        .select_from(
            _services.outerjoin(
                _channels,
                and_(_channels.c.service_id == _services.c.id, _channels.c.enabled == true()),
            )
        )
        .where(_services.c.id == bindparam("service_id"))
        .order_by(_channels.c.id)
    )
    # FOR NO KEY UPDATE, not FOR UPDATE: the transaction has already inserted its incident,
    # whose foreign key holds FOR KEY SHARE on this same service row. FOR UPDATE conflicts
    # with that, so two concurrent openers each waited for the other's KEY SHARE: a
    # deadlock for every pair (found by tests/e2e/test_notifications.py's storm). NO KEY
    # UPDATE still serialises the openers with each other, and leaves KEY SHARE alone.
    return query.with_for_update(of=_services, key_share=True) if lock_service else query


_SELECT_CHANNELS = {lock: _select_channels(lock) for lock in (False, True)}


def _select_storm_and_silences() -> Any:
    """The service's new incidents since `since` and its active silences, in one round
    trip: the count rides on every row, and an outer join keeps it when no silence is."""
    recent = (
        select(func.count())
        .select_from(_incidents)
        .where(
            _incidents.c.service_id == bindparam("service_id"),
            _incidents.c.created_at >= bindparam("since", type_=_incidents.c.created_at.type),
        )
        .scalar_subquery()
    )
    now = bindparam("now", type_=_silences.c.starts_at.type)
    one = select(literal(1).label("one")).subquery("one")
    return select(
        recent.label("recent"),
        _silences.c.id,
        _silences.c.match_text,
        _silences.c.dedup_key,
        _silences.c.reason,
        _silences.c.starts_at,
        _silences.c.ends_at,
    ).select_from(
        one.outerjoin(
            _silences,
            and_(
                _silences.c.service_id == bindparam("service_id"),
                _silences.c.starts_at <= now,
                _silences.c.ends_at > now,
                _silences.c.ended_at.is_(None),
            ),
        )
    )


_SELECT_STORM_AND_SILENCES = _select_storm_and_silences()


def queue_notifications(
    connection: Connection,
    incident: Mapping[str, Any],
    events: Sequence[IncidentEvent],
    now: datetime,
    escalation_reason: str | None = None,
) -> int:
    """Write the outbox rows the incident's events call for; how many were written.

    The same events start or stop the service's escalation (app/services/paging.py);
    `escalation_reason` names a run started over by a job (the acknowledgement timeout).
    """
    from app.services.paging import escalate_on_events  # paging builds on this module

    is_new = IncidentEvent.TRIGGERED in events
    lock = is_new and connection.dialect.name == "postgresql"
    found_rows = connection.execute(
        _SELECT_CHANNELS[lock], {"service_id": incident["service_id"]}
    ).all()
    if found_rows:
        escalate_on_events(
            connection, dict(incident), events, found_rows[0], now, escalation_reason
        )
    rows = [r for r in found_rows if r.id is not None]
    facts = IncidentFacts(incident["title"], incident["dedup_key"], incident["severity"])
    channels = [ChannelRule(r.id, r.min_severity, parse_events(r.events)) for r in rows]
    if not channels or not any(plan_notifications(events, facts, channels, [], False, now).routed):
        return 0
    first = rows[0]
    storm = StormRule(first.storm_threshold, timedelta(minutes=first.storm_window_minutes))
    found = connection.execute(
        _SELECT_STORM_AND_SILENCES,
        {
            "service_id": incident["service_id"],
            "since": now - storm.window if is_new else now + timedelta(days=1),
            "now": now,
        },
    ).all()
    silences = [
        SilenceRule(
            r.id, r.starts_at, r.ends_at, r.match_text, reason=r.reason, dedup_key=r.dedup_key
        )
        for r in found
        if r.id is not None
    ]
    storming = is_new and is_storm(found[0].recent, storm)
    plan = plan_notifications(events, facts, channels, silences, storming, now)
    document = {"incident": incident_document(incident, first.service_name)}
    outbox: list[dict[str, Any]] = []
    for routed in plan.routed:
        if routed.route is Route.DIGEST:
            continue
        is_held = routed.route is Route.HOLD
        outbox.append(
            outbox_row(
                routed.channel_id,
                incident["id"],
                notification_type(routed.event),
                document,
                now,
                status="held" if is_held else "queued",
                silence_id=routed.silence.id if is_held and routed.silence else None,
            )
        )
    members: list[dict[str, Any]] = []
    digests = [r.channel_id for r in plan.of(Route.DIGEST)]
    if digests:
        opened, members = _digests(connection, digests, incident, first.service_name, storm, now)
        outbox.extend(opened)
    insert_outbox(connection, outbox, members)
    held = plan.of(Route.HOLD)
    if held and held[0].silence is not None:
        _note_held(connection, incident["id"], held[0].silence, len(held), now)
    return len(outbox)


def outbox_row(
    channel_id: int | None,
    incident_id: int | None,
    type_: str,
    document: dict[str, Any],
    now: datetime,
    status: str = "queued",
    silence_id: int | None = None,
    next_attempt_at: datetime | None = None,
    contact_method_id: int | None = None,
) -> dict[str, Any]:
    """One outbox row: to a channel, or (a page) to a person's contact method."""
    return {
        "id": str(uuid.uuid4()),
        "channel_id": channel_id,
        "contact_method_id": contact_method_id,
        "incident_id": incident_id,
        "type": type_,
        "document": document,
        "status": status,
        "attempts": 0,
        "next_attempt_at": next_attempt_at or now,
        "lease_until": None,
        "leased_by": None,
        "created_at": now,
        "sent_at": None,
        "last_error": None,
        "silence_id": silence_id,
        "first_attempt_delay_ms": None,
    }


def _digests(
    connection: Connection,
    channel_ids: list[int],
    incident: Mapping[str, Any],
    service_name: str,
    storm: StormRule,
    now: datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The incident joins each channel's waiting digest, or opens the channel's next one:
    the digests to queue, and the member rows that say which digest stands for it.

    One digest per channel and storm window: the window opens with the storm's first
    suppressed incident and the digest is sent when it closes (app/jobs/notify.py counts
    and titles its members then). "Waiting" is a digest the sender has not yet claimed
    (no attempt) whose window is still open. Two races, both closed by locks:
      - two openers: the service row lock (PostgreSQL, taken by the channel SELECT) or
        the write lock (SQLite) orders them, so the second sees the first's digest;
      - an opener and the sender's claim: the waiting digest is locked FOR UPDATE. A
        claim under way makes the opener wait, and PostgreSQL then re-checks the row (now
        `sending`): the opener starts the next window instead of joining a digest already
        counted. A claim that comes second skips the locked row (SKIP LOCKED) until the
        opener commits. SQLite's claim takes the write lock (BEGIN IMMEDIATE).
    """
    waiting = connection.execute(
        select(_notifications.c.id, _notifications.c.channel_id)
        .where(
            _notifications.c.channel_id.in_(channel_ids),
            _notifications.c.type == DIGEST_TYPE,
            _notifications.c.status.in_(("queued", "held")),
            _notifications.c.attempts == 0,
            _notifications.c.next_attempt_at > now,
        )
        .order_by(_notifications.c.next_attempt_at, _notifications.c.id)
        .with_for_update(of=_notifications)
    ).all()
    digest_of: dict[int, str] = {}
    for found in waiting:
        digest_of.setdefault(found.channel_id, found.id)
    window_end = now + storm.window
    document = {
        "service": {"id": incident["service_id"], "name": service_name},
        "window_start": now.isoformat(),
        "window_end": window_end.isoformat(),
    }
    opened = [
        outbox_row(channel_id, None, DIGEST_TYPE, document, now, next_attempt_at=window_end)
        for channel_id in channel_ids
        if channel_id not in digest_of
    ]
    digest_of.update((row["channel_id"], row["id"]) for row in opened)
    members = [
        {"notification_id": digest_of[channel_id], "incident_id": incident["id"]}
        for channel_id in channel_ids
    ]
    return opened, members


def insert_outbox(
    connection: Connection,
    rows: list[dict[str, Any]],
    digest_members: Sequence[dict[str, Any]] = (),
) -> None:
    """Insert outbox rows (and the digest members that go with them) in one statement; on
    PostgreSQL with the NOTIFY that wakes the sender when the transaction commits (a
    data-modifying CTE always runs, and the members' foreign keys are checked at the end
    of the statement, when the digests they name are in)."""
    if not rows and not digest_members:
        return
    members = _digest_members.insert().values(list(digest_members)) if digest_members else None
    if not rows:
        assert members is not None
        connection.execute(members)  # joining a waiting digest: nothing new to send
        return
    statement = _notifications.insert().values(rows)
    if connection.dialect.name == "postgresql":
        wake = select(func.pg_notify(WAKE_CHANNEL, "")).add_cte(statement.cte("queued"))
        if members is not None:
            wake = wake.add_cte(members.cte("members"))
        connection.execute(wake)
    else:
        connection.execute(statement)
        if members is not None:
            connection.execute(members)


def wake_sender(connection: Connection) -> None:
    """Wake the LISTENing sender at commit (PostgreSQL); SQLite's sender polls."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": WAKE_CHANNEL})


def _note_held(
    connection: Connection, incident_id: int, silence: SilenceRule, count: int, now: datetime
) -> None:
    reason = f": {silence.reason}" if silence.reason else ""
    connection.execute(
        _timeline.insert().values(
            incident_id=incident_id,
            at=now,
            kind="notification_held",
            actor=NOTIFIER,
            message=f"{count} notification(s) held back by silence #{silence.id}{reason}",
            data={"silence_id": silence.id, "count": count},
            delivery_id=None,
        )
    )
