"""Silences: hold a service's notifications back (never its incidents) for a while.

When a silence ends (ended early, or its time ran out: a periodic check of the sender),
each incident it held back that is still triggered is notified once per channel, unless
another silence still covers it (then that one holds it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.domain.errors import Conflict, InvalidInput, NotFound
from app.domain.lifecycle import Status
from app.domain.notify import IncidentFacts, SilenceRule, holding_silence
from app.services.notification_documents import incident_document, incident_fields
from app.services.notifications import NOTIFIER, wake_sender
from app.store.models import Incident, Service, TimelineEntry
from app.store.notify_models import Notification, NotificationChannel, Silence

MAX_MATCH_LENGTH = 200
MAX_SILENCE = timedelta(days=90)


def create_silence(
    session: Session,
    service: Service,
    now: datetime,
    *,
    until: datetime,
    reason: str,
    created_by: str,
    match_text: str | None = None,
    dedup_key: str | None = None,
    starts_at: datetime | None = None,
) -> Silence:
    """Silence the service (or only incidents whose title or dedup key has the text)."""
    reason = (reason or "").strip()
    match_text = (match_text or "").strip() or None
    starts = starts_at or now
    problems: dict[str, list[str]] = {}
    if not reason:
        problems["reason"] = ["say why (it is shown in every incident it holds back)"]
    if until.tzinfo is None:
        problems["until"] = ["give a time zone (e.g. 2026-12-01T18:00:00+00:00)"]
    elif until <= max(starts, now):
        problems["until"] = ["must be in the future"]
    elif until - starts > MAX_SILENCE:
        problems["until"] = ["at most 90 days"]
    if match_text is not None and len(match_text) > MAX_MATCH_LENGTH:
        problems["match"] = [f"at most {MAX_MATCH_LENGTH} characters"]
    if problems:
        raise InvalidInput("The silence is not valid.", fields=problems)
    silence = Silence(
        service_id=service.id,
        match_text=match_text,
        dedup_key=dedup_key,
        starts_at=starts,
        ends_at=until,
        reason=reason,
        created_by=created_by,
        created_at=now,
    )
    session.add(silence)
    session.flush()
    return silence


def list_silences(session: Session, now: datetime, include_ended: bool = False) -> list[Silence]:
    query = select(Silence).order_by(Silence.id.desc())
    if not include_ended:
        query = query.where(Silence.ended_at.is_(None), Silence.ends_at > now)
    return list(session.scalars(query))


def end_silence(session: Session, silence_id: int, now: datetime) -> Silence:
    """End a silence now and notify what it held back."""
    silence = session.get(Silence, silence_id, with_for_update=True)
    if silence is None:
        raise NotFound(f"No silence with id {silence_id}.")
    if silence.ended_at is not None or silence.ends_at <= now:
        raise Conflict(f"Silence {silence_id} has already ended.")
    silence.ended_at = now
    session.flush()
    release_ended(session, now)
    return silence


def _rule(silence: Silence) -> SilenceRule:
    return SilenceRule(
        silence.id,
        silence.starts_at,
        silence.ends_at,
        silence.match_text,
        silence.ended_at,
        silence.reason,
        silence.dedup_key,
    )


def release_ended(session: Session, now: datetime) -> int:
    """Notify, once, what ended silences held back; how many notifications were queued."""
    ended = session.scalars(
        select(Silence)
        .where(
            Silence.released_at.is_(None),
            or_(Silence.ended_at.is_not(None), Silence.ends_at <= now),
        )
        .with_for_update(skip_locked=True)
    ).all()
    queued = 0
    for silence in ended:
        queued += _release(session, silence, now)
        silence.released_at = now
    session.flush()
    if queued:
        wake_sender(session.connection())
    return queued


def _release(session: Session, silence: Silence, now: datetime) -> int:
    held: Sequence[Notification] = session.scalars(
        select(Notification)
        .where(Notification.silence_id == silence.id, Notification.status == "held")
        .order_by(Notification.created_at, Notification.id)
    ).all()
    others = [
        _rule(s)
        for s in session.scalars(
            select(Silence).where(
                Silence.service_id == silence.service_id,
                Silence.id != silence.id,
                Silence.ended_at.is_(None),
                Silence.ends_at > now,
            )
        )
    ]
    # Only channel notifications are held (pages to people are never silenced rows).
    groups: dict[tuple[int | None, int | None], list[Notification]] = {}
    for notification in held:
        groups.setdefault((notification.incident_id, notification.channel_id), []).append(
            notification
        )
    queued = 0
    for (incident_id, channel_id), rows in groups.items():
        incident = session.get(Incident, incident_id) if incident_id is not None else None
        if incident is None or incident.status != Status.TRIGGERED.value:
            continue  # acknowledged or resolved meanwhile: nobody needs paging for it
        facts = IncidentFacts(incident.title, incident.dedup_key, incident.severity)
        still = holding_silence(others, facts, now)
        if still is not None:
            for row in rows:
                row.silence_id = still.id
            continue
        first = rows[0]
        first.status = "queued"
        first.next_attempt_at = now
        first.created_at = now  # the retry window and the delay count from the release
        name = _service_name(session, incident)
        first.document = {"incident": incident_document(incident_fields(incident), name)}
        channel = session.get(NotificationChannel, channel_id)
        session.add(
            TimelineEntry(
                incident_id=incident.id,
                at=now,
                kind="notification_released",
                actor=NOTIFIER,
                message=(
                    f"Silence #{silence.id} ended: notifying "
                    f"{channel.name if channel else channel_id} ({first.type})"
                ),
                data={"silence_id": silence.id, "notification_id": first.id},
            )
        )
        queued += 1
    return queued


def _service_name(session: Session, incident: Incident) -> str:
    service = session.get(Service, incident.service_id)
    return service.name if service is not None else ""


def silence_incident(
    session: Session,
    incident_id: int,
    hours: int,
    created_by: str,
    now: datetime,
    reason: str | None = None,
) -> Silence:
    """ "Silence this issue for N h": its service's notifications for its dedup key."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"No incident with id {incident_id}.")
    service = session.get(Service, incident.service_id)
    assert service is not None  # the foreign key says so
    return create_silence(
        session,
        service,
        now,
        until=now + timedelta(hours=hours),
        reason=reason or f"silenced from incident #{incident.id} for {hours} h",
        created_by=created_by,
        dedup_key=incident.dedup_key,
    )
