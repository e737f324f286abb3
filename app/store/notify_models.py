"""The notification tables (SPEC 7): channels, the outbox, attempts, digest members,
silences, used links.

Kept beside app/store/models.py (which imports this module at its end) so the paging
tables read as one group; they share its Base, naming convention and column types.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.store.models import Base, Service

DEFAULT_EVENTS = "triggered,reopened,severity_raised,resolved"


class NotificationChannel(Base):
    """Where a service's notifications go. The target (URL, addresses, routing key,
    signing secret) is one SecretBox ciphertext of a JSON object; `masked` is what may be
    shown after creation."""

    __tablename__ = "notification_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    min_severity: Mapped[str] = mapped_column(String(20), default="error")
    # Comma-separated incident events (app.domain.incident.IncidentEvent values).
    events: Mapped[str] = mapped_column(String(200), default=DEFAULT_EVENTS)
    config_ciphertext: Mapped[str] = mapped_column(Text)
    masked: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]

    service: Mapped[Service] = relationship()


class Notification(Base):
    """The outbox: one message to one channel, or to one person's contact method (a page,
    docs/on-call.md), written with the change that caused it.

    The id (a uuid) is the webhook-id: every attempt of one notification reuses it, so a
    receiver can drop a repeat. Statuses: queued, sending (leased), sent, failed, held.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_notifications_incident_id_channel_id", "incident_id", "channel_id"),
        # Exactly one addressee: a service's channel or a person's contact method.
        CheckConstraint("(channel_id IS NULL) <> (contact_method_id IS NULL)", name="one_target"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel_id: Mapped[int | None] = mapped_column(
        ForeignKey("notification_channels.id", ondelete="CASCADE"), index=True
    )
    contact_method_id: Mapped[int | None] = mapped_column(
        ForeignKey("contact_methods.id", ondelete="CASCADE"), index=True
    )
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(40))
    document: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    leased_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # The silence that holds it back (status held), kept to release it when that ends.
    silence_id: Mapped[int | None] = mapped_column(
        ForeignKey("silences.id", ondelete="SET NULL"), index=True
    )
    # Commit → first attempt, for bridge_notification_delay_seconds.
    first_attempt_delay_ms: Mapped[float | None] = mapped_column(Float)


class NotificationAttempt(Base):
    """One try at sending a notification, whatever came of it."""

    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[str] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(20))  # sent | retry | failed
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)


class DigestMember(Base):
    """An incident a storm digest stands for: written when the incident's own page to the
    digest's channel is suppressed for the storm, in the same transaction (SPEC 7). The
    sender counts and titles the digest from these rows, so it names exactly what was
    held back, whatever order the openers committed in. Goes with either parent."""

    __tablename__ = "digest_members"

    notification_id: Mapped[str] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), primary_key=True
    )
    # Indexed on its own: the primary key serves the digest's look-up, this one an
    # incident's (and the cascade when an incident goes).
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Silence(Base):
    """Holds a service's notifications back (never its incidents) from starts_at to
    ends_at, or until ended early; `match_text` narrows it to titles or dedup keys
    containing the text."""

    __tablename__ = "silences"
    __table_args__ = (Index("ix_silences_service_id_ends_at", "service_id", "ends_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    match_text: Mapped[str | None] = mapped_column(String(200))
    # Set by "Silence this issue": exactly this dedup key (a text match of "sentry-12"
    # would also hold sentry-123).
    dedup_key: Mapped[str | None] = mapped_column(String(255))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]  # ended early by a person
    # When the periodic check notified what it held back (once).
    released_at: Mapped[datetime | None] = mapped_column(index=True)

    service: Mapped[Service] = relationship()


class UsedAckLink(Base):
    """An acknowledge link that was used: links are single use."""

    __tablename__ = "used_ack_links"

    link_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    used_at: Mapped[datetime]
