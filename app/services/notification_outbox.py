"""Working the notification outbox: claim due rows, record what each attempt came to.

The jobs process claims in one short transaction, sends with no transaction open, then
records in another. A claim is a lease: a row whose sender died (or hung past the lease)
is claimed again and re-sent with the same id, which the receiver can drop as a repeat.
On PostgreSQL `FOR UPDATE SKIP LOCKED` lets several jobs processes claim side by side
without ever taking one row twice; SQLite's BEGIN IMMEDIATE serialises claimers.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.channels.base import ChannelTarget, SendResult
from app.domain.errors import Conflict, NotFound
from app.domain.notify import DIGEST_TYPE, TEST_TYPE, next_attempt_at
from app.services.notification_documents import incident_document, incident_fields
from app.services.notifications import NOTIFIER, wake_sender
from app.store import incidents as incident_store
from app.store.encryption import SecretBox
from app.store.models import ContactMethod, Service, TimelineEntry, User
from app.store.notify_models import Notification, NotificationAttempt, NotificationChannel

MAX_ERROR_LENGTH = 500
DIGEST_TOP = 5


@dataclass(frozen=True)
class Claimed:
    """A leased notification, with what sending it needs, outside any session.

    It goes to a channel, or (a page, docs/on-call.md) to a person's contact method: then
    `channel_kind` is the method's kind (email, apprise), `channel_name` the person's
    email, and `config_ciphertext` the Apprise URL's ciphertext (None for the email).
    """

    id: str
    type: str
    incident_id: int | None
    channel_id: int | None
    channel_kind: str
    channel_name: str
    config_ciphertext: str | None
    document: dict[str, Any]
    attempts: int
    created_at: datetime
    contact_method_id: int | None = None


def claim_due(
    session: Session, now: datetime, limit: int, lease: timedelta, worker: str
) -> list[Claimed]:
    """Lease up to `limit` due notifications (queued and due, or sending past its lease)."""
    rows = list(
        session.execute(
            select(Notification, NotificationChannel, ContactMethod, User)
            .outerjoin(NotificationChannel, NotificationChannel.id == Notification.channel_id)
            .outerjoin(ContactMethod, ContactMethod.id == Notification.contact_method_id)
            .outerjoin(User, User.id == ContactMethod.user_id)
            .where(
                or_(
                    and_(Notification.status == "queued", Notification.next_attempt_at <= now),
                    and_(Notification.status == "sending", Notification.lease_until < now),
                )
            )
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(limit)
            .with_for_update(of=Notification, skip_locked=True)
        )
    )
    claimed = []
    for notification, channel, method, person in rows:
        if notification.attempts == 0:
            delay = (now - notification.created_at).total_seconds() * 1000
            notification.first_attempt_delay_ms = max(delay, 0.0)
        notification.status = "sending"
        notification.attempts += 1
        notification.lease_until = now + lease
        notification.leased_by = worker
        if notification.type == DIGEST_TYPE and "count" not in notification.document:
            notification.document = _digest_document(
                session, notification.id, notification.document
            )
        if channel is not None:
            kind, name, ciphertext = channel.kind, channel.name, channel.config_ciphertext
        else:  # the check constraint says: then a contact method
            kind, name, ciphertext = method.kind, person.email, method.target_ciphertext
        claimed.append(
            Claimed(
                id=notification.id,
                type=notification.type,
                incident_id=notification.incident_id,
                channel_id=notification.channel_id,
                channel_kind=kind,
                channel_name=name,
                config_ciphertext=ciphertext,
                document=dict(notification.document),
                attempts=notification.attempts,
                created_at=notification.created_at,
                contact_method_id=notification.contact_method_id,
            )
        )
    session.flush()
    return claimed


def _digest_document(session: Session, digest_id: str, stored: dict[str, Any]) -> dict[str, Any]:
    """The digest's count and top incidents (most events first), now its window closed:
    of exactly the incidents whose pages it stood in for (app/services/notifications.py
    wrote one digest_members row for each, with the incident)."""
    service = stored["service"]
    count, top = incident_store.digest_members(session, digest_id, DIGEST_TOP)
    incidents = [incident_document(incident_fields(i), service["name"]) for i in top]
    return {**stored, "count": count, "incidents": incidents}


def target_of(claimed: Claimed, secrets: SecretBox) -> ChannelTarget:
    """The channel's (or contact method's) decrypted target (never logged, never stored
    in the clear)."""
    if claimed.contact_method_id is not None:
        if claimed.channel_kind == "email":  # the person's account email
            return ChannelTarget("email", claimed.channel_name, recipients=(claimed.channel_name,))
        url = secrets.decrypt(claimed.config_ciphertext) if claimed.config_ciphertext else None
        return ChannelTarget(claimed.channel_kind, claimed.channel_name, url=url)
    assert claimed.config_ciphertext is not None  # a channel always has its target
    config = json.loads(secrets.decrypt(claimed.config_ciphertext))
    return ChannelTarget(
        kind=claimed.channel_kind,
        name=claimed.channel_name,
        url=config.get("url"),
        recipients=tuple(config.get("recipients") or ()),
        routing_key=config.get("routing_key"),
        secret=config.get("secret"),
    )


def record_attempt(
    session: Session,
    claimed: Claimed,
    result: SendResult,
    now: datetime,
    worker: str,
    jitter: float,
    retry_window: timedelta,
) -> str:
    """Store the attempt and move the notification on; returns its new status.

    A sender whose lease ran out (another took the row over) still records its attempt,
    but leaves the row to the new holder.
    """
    error = (result.error or "")[:MAX_ERROR_LENGTH] or None
    session.add(
        NotificationAttempt(
            notification_id=claimed.id,
            at=now,
            outcome=result.outcome,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=error,
        )
    )
    notification = session.get(Notification, claimed.id, with_for_update=True)
    if notification is None:
        return "gone"
    if notification.status != "sending" or notification.leased_by != worker:
        session.flush()
        return "superseded"
    notification.lease_until = None
    notification.leased_by = None
    notification.last_error = error
    if result.outcome == "sent":
        notification.status = "sent"
        notification.sent_at = now
        _note(session, claimed, now, "notified", f"Sent {claimed.type} to {_who(claimed)}")
        if claimed.type == TEST_TYPE and claimed.contact_method_id is not None:
            # A test that reached the person makes the method pageable (docs/on-call.md).
            method = session.get(ContactMethod, claimed.contact_method_id)
            if method is not None:
                method.tested_at = now
    elif result.outcome == "retry" and (
        again := next_attempt_at(
            claimed.created_at,
            now,
            notification.attempts,
            jitter,
            retry_window,
            result.retry_after_seconds,
        )
    ):
        notification.status = "queued"
        notification.next_attempt_at = again
    else:
        notification.status = "failed"
        why = error or "failed"
        if result.outcome == "retry":
            why = f"gave up after {notification.attempts} attempts: {why}"
        _note(
            session,
            claimed,
            now,
            "notification_failed",
            f"Could not send {claimed.type} to {_who(claimed)}: {why}",
        )
    session.flush()
    return notification.status


def _who(claimed: Claimed) -> str:
    return f"{claimed.channel_name} ({claimed.channel_kind})"


def _note(session: Session, claimed: Claimed, now: datetime, kind: str, message: str) -> None:
    if claimed.incident_id is None:
        return
    data: dict[str, Any] = {"notification_id": claimed.id, "channel_id": claimed.channel_id}
    if claimed.contact_method_id is not None:
        # A page: the timeline says which step of which run it was for (docs/on-call.md).
        data["contact_method_id"] = claimed.contact_method_id
        data["page"] = claimed.document.get("page")
        step = (claimed.document.get("page") or {}).get("step")
        if step is not None:
            message += f" (escalation step {step})"
    session.add(
        TimelineEntry(
            incident_id=claimed.incident_id,
            at=now,
            kind=kind,
            actor=NOTIFIER,
            message=message,
            data=data,
        )
    )


# ---------------------------------------------------------------- admins


def retry_failed(session: Session, notification_id: str, now: datetime) -> Notification:
    """Queue a failed notification again (same id), at an admin's request."""
    notification = session.get(Notification, notification_id, with_for_update=True)
    if notification is None:
        raise NotFound(f"No notification with id {notification_id}.")
    if notification.status != "failed":
        raise Conflict(f"Only a failed notification can be retried; it is {notification.status}.")
    notification.status = "queued"
    notification.next_attempt_at = now
    # The retry window counts from here: an admin's retry gets a fresh hour.
    notification.created_at = now
    session.flush()
    wake_sender(session.connection())
    return notification


def list_notifications(
    session: Session, status: str | None = None, limit: int = 100
) -> list[Notification]:
    query = select(Notification).order_by(Notification.created_at.desc()).limit(limit)
    if status:
        query = query.where(Notification.status == status)
    return list(session.scalars(query))


def queue_test(session: Session, channel: NotificationChannel, now: datetime) -> Notification:
    """A `test` notification for the channel, sent like any other."""
    service = session.get(Service, channel.service_id)
    assert service is not None  # the foreign key says so
    notification = Notification(
        id=str(uuid.uuid4()),
        channel_id=channel.id,
        incident_id=None,
        type=TEST_TYPE,
        document={
            "service": {"id": service.id, "name": service.name},
            "message": f"Test notification for channel {channel.name!r} of {service.name}.",
        },
        status="queued",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(notification)
    session.flush()
    wake_sender(session.connection())
    return notification


def queue_method_test(session: Session, method: ContactMethod, now: datetime) -> Notification:
    """A `test` to one person's contact method ("send me a test"). When it is sent, the
    method counts as tested and may be paged (record_attempt sets `tested_at`)."""
    notification = Notification(
        id=str(uuid.uuid4()),
        channel_id=None,
        contact_method_id=method.id,
        incident_id=None,
        type=TEST_TYPE,
        document={
            "service": {"id": None, "name": "on-call"},
            "message": f"Test page for {method.user.email} by {method.kind}. If this reached"
            " you, the bridge can page you this way.",
        },
        status="queued",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(notification)
    session.flush()
    wake_sender(session.connection())
    return notification


def backlog(session: Session, now: datetime) -> tuple[int, float]:
    """How many notifications wait to be sent now, and the age of the oldest (seconds)."""
    waiting = or_(
        and_(Notification.status == "queued", Notification.next_attempt_at <= now),
        Notification.status == "sending",
    )
    count, oldest = session.execute(
        select(func.count(), func.min(Notification.created_at)).where(waiting)
    ).one()
    return int(count or 0), (now - oldest).total_seconds() if oldest else 0.0
