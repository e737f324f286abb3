"""The bridge's tables (SPEC 1). Migrations in migrations/versions mirror these."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from app.domain.incident import opened_fields
from app.store.types import JSONDocument, UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONDocument,
    }


class Service(Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    reopen_window_minutes: Mapped[int] = mapped_column(Integer, default=30)
    created_at: Mapped[datetime]
    # Storm control (SPEC 7): more than this many new incidents within the window are
    # sent as one digest per channel instead of one by one.
    storm_threshold: Mapped[int] = mapped_column(Integer, default=10, server_default=text("10"))
    storm_window_minutes: Mapped[int] = mapped_column(Integer, default=5, server_default=text("5"))
    # On-call (docs/on-call.md): who is paged, when an acknowledgement runs out, from which
    # severity people are paged at all (below it only channels hear of an incident).
    escalation_policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("escalation_policies.id", ondelete="SET NULL")
    )
    ack_timeout_minutes: Mapped[int | None] = mapped_column(Integer)
    page_min_severity: Mapped[str] = mapped_column(
        String(20), default="error", server_default="error"
    )

    integrations: Mapped[list[Integration]] = relationship(back_populates="service")


class Integration(Base):
    __tablename__ = "integrations"

    # 32 URL-safe characters from 24 random bytes: 192 bits, the credential when unsigned.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20), default="sentry")
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    previous_secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Write-back (SPEC 6): people resolving/acknowledging here resolve/ignore the Sentry issue.
    write_back: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    service: Mapped[Service] = relationship(back_populates="integrations")

    @property
    def has_secret(self) -> bool:
        return self.secret_ciphertext is not None


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        # SPEC 4.3: at most one unresolved incident per (service, key), enforced here so
        # that concurrent deliveries can never open two.
        Index(
            "uq_incidents_open_dedup_key",
            "service_id",
            "dedup_key",
            unique=True,
            sqlite_where=text("status <> 'resolved'"),
            postgresql_where=text("status <> 'resolved'"),
        ),
        Index("ix_incidents_service_key_id", "service_id", "dedup_key", "id"),
        Index("ix_incidents_status_id", "status", "id"),
        # Keyset pagination of the incident list: one index per sort, with and without the
        # status filter the on-call views always set.
        Index("ix_incidents_last_event_at_id", "last_event_at", "id"),
        Index("ix_incidents_status_last_event_at_id", "status", "last_event_at", "id"),
        Index("ix_incidents_service_status_id", "service_id", "status", "id"),
        # Storm control counts a service's incidents opened within the last minutes.
        Index("ix_incidents_service_id_created_at", "service_id", "created_at"),
        # The list's "urgency" (on fire first) and severity sorts read one (status,
        # severity) or (severity) segment at a time, each in id order.
        Index("ix_incidents_status_severity_id", "status", "severity", "id"),
        Index("ix_incidents_severity_id", "severity", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    dedup_key: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(255))
    severity: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    first_event_at: Mapped[datetime]
    last_event_at: Mapped[datetime]
    triggered_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    # The payload time of the last status change; older deliveries must not undo it.
    last_transition_at: Mapped[datetime]
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    assignee: Mapped[str | None] = mapped_column(String(255))
    sentry_issue_id: Mapped[str | None] = mapped_column(String(64))
    sentry_short_id: Mapped[str | None] = mapped_column(String(128))
    sentry_issue_url: Mapped[str | None] = mapped_column(Text)
    sentry_project: Mapped[str | None] = mapped_column(String(255))
    enrichment: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # What the payloads say of the issue or event, kept without enrichment (bounded in
    # app/domain/alerts.py); the newest delivery that says one sets it.
    culprit: Mapped[str | None] = mapped_column(String(500))
    environment: Mapped[str | None] = mapped_column(String(255))
    release: Mapped[str | None] = mapped_column(String(255))
    platform: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[dict[str, Any] | None]
    sentry_count: Mapped[int | None] = mapped_column(BigInteger)
    sentry_user_count: Mapped[int | None] = mapped_column(BigInteger)
    # The newest event's own time, as its payload says it (triggered_at is the bridge's).
    event_at: Mapped[datetime | None]
    # The bridge's own test alert (app/services/alert_probe.py).
    is_test: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    service: Mapped[Service] = relationship()
    timeline: Mapped[list[TimelineEntry]] = relationship(
        back_populates="incident", order_by="TimelineEntry.id"
    )

    @classmethod
    def opened(
        cls,
        *,
        service_id: int,
        dedup_key: str,
        title: str,
        source: str,
        severity: str,
        at: datetime,
        created_at: datetime,
    ) -> Incident:
        """A new triggered incident with its first event at `at`."""
        return cls(
            **opened_incident(
                service_id=service_id,
                dedup_key=dedup_key,
                title=title,
                source=source,
                severity=severity,
                at=at,
                created_at=created_at,
            )
        )


def opened_incident(
    *,
    service_id: int,
    dedup_key: str,
    title: str,
    source: str,
    severity: str,
    at: datetime,
    created_at: datetime,
) -> dict[str, Any]:
    """The columns of a new triggered incident with its first event at `at`."""
    fields = opened_fields(
        dedup_key=dedup_key, title=title, source=source, severity=severity, at=at, now=created_at
    )
    return {"service_id": service_id, **fields}


class TimelineEntry(Base):
    __tablename__ = "timeline_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None]
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL"), index=True
    )

    incident: Mapped[Incident] = relationship(back_populates="timeline")


class Delivery(Base):
    """Every inbound request for a known integration, whatever became of it."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_integration_id_id", "integration_id", "id"),
        Index("ix_deliveries_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    received_at: Mapped[datetime]
    request_id: Mapped[str | None] = mapped_column(String(255))
    hook_resource: Mapped[str | None] = mapped_column(String(64))
    hook_timestamp: Mapped[str | None] = mapped_column(String(64))
    content_type: Mapped[str | None] = mapped_column(String(255))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    body_size: Mapped[int] = mapped_column(Integer, default=0)
    # A refused delivery keeps only the body's first 8 KiB (app/domain/body_record.py);
    # the hash says what the whole body was.
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    body_truncated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    signature_outcome: Mapped[str] = mapped_column(String(32))
    format: Mapped[str | None] = mapped_column(String(32))
    resource: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    dedup_key: Mapped[str | None] = mapped_column(String(255))
    decision: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))
    http_status: Mapped[int] = mapped_column(Integer)
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), index=True
    )
    # Set on a replay: the delivery it re-applies, and the person who asked for it.
    replay_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL")
    )
    replayed_by: Mapped[str | None] = mapped_column(String(255))
    # Set when the delivery waited in the local spool during a database outage: unique, so
    # a spool file applied but not yet removed (a crash in between) is never applied twice.
    spool_id: Mapped[str | None] = mapped_column(String(64), unique=True)


class DeliveryClaim(Base):
    """The first applied delivery of each Sentry Request-ID: a repeat finds the key taken."""

    __tablename__ = "delivery_claims"

    integration_id: Mapped[str] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), primary_key=True
    )
    request_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    claimed_at: Mapped[datetime] = mapped_column(index=True)


class IncidentEvent(Base):
    """Each Sentry event counted on an incident. Sentry re-sends a webhook that failed with
    a new Request-ID, so the event id is what makes its retries count once (SPEC 4.3)."""

    __tablename__ = "incident_events"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The delivery that counted it, for the answer to a retry. A plain id, not a foreign
    # key: pruning deliveries must not have to look through (or index) this table.
    delivery_id: Mapped[int] = mapped_column(Integer)
    counted_at: Mapped[datetime]


class SentryProjectName(Base):
    """A Sentry project's name as a service's deliveries named it: event alerts and errors
    carry only the slug, and one project should show under one name (SPEC 4.4)."""

    __tablename__ = "sentry_project_names"

    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    slug: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    learned_at: Mapped[datetime]


class DeliveryBodyClaim(Base):
    """The first applied delivery of each signed body: Sentry's signature covers the body
    only, so a captured body re-sent with fresh unsigned headers finds its hash taken."""

    __tablename__ = "delivery_body_claims"

    integration_id: Mapped[str] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), primary_key=True
    )
    # SHA-256 of the raw body, hex.
    body_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    claimed_at: Mapped[datetime] = mapped_column(index=True)


class User(Base):
    """A person who works incidents (responder) or also runs the bridge (admin)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    # Part of every browser session's id: bumped by logout, a password change and
    # deactivation, so every session cookie issued before is refused from then on.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The secret of the person's iCalendar feed URL: looked up by hash, shown from ciphertext.
    feed_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    feed_token_ciphertext: Mapped[str | None] = mapped_column(Text)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")


class ApiToken(Base):
    """A personal API token, kept only as its SHA-256: the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")


class SentryInstallation(Base):
    """A Sentry organisation connected to the bridge: an install of the public integration,
    or an internal integration's token stored by an admin. Tokens are Fernet ciphertexts."""

    __tablename__ = "sentry_installations"
    __table_args__ = (
        Index("ix_sentry_installations_integration_id_status", "integration_id", "status"),
        Index("ix_sentry_installations_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Sentry's installation uuid; internal integrations stored by hand may not give one.
    uuid: Mapped[str | None] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # "public" | "internal"
    status: Mapped[str] = mapped_column(String(20))  # "pending" | "installed" | "revoked"
    org_slug: Mapped[str | None] = mapped_column(String(200))
    app_uuid: Mapped[str | None] = mapped_column(String(64))
    integration_id: Mapped[str | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="SET NULL")
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    token_ciphertext: Mapped[str | None] = mapped_column(Text)
    refresh_token_ciphertext: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None]  # None: never expires (internal integrations)
    # Bumped on every stored pair, so a refresh that lost a race can tell.
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    # SHA-256 of the grant code being (or last) exchanged: codes are single-use.
    grant_code_hash: Mapped[str | None] = mapped_column(String(64))
    exchange_started_at: Mapped[datetime | None]
    last_refreshed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class SentryOAuthState(Base):
    """An OAuth `state` handed out by POST /initiate: single-use, short-lived, kept hashed."""

    __tablename__ = "sentry_oauth_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    integration_id: Mapped[str | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]


class SentryJob(Base):
    """Outbox of work against the Sentry API, written in the transaction that caused it.

    Kinds: "enrich" (incident details), "write_back" (resolve/ignore the Sentry issue),
    "exchange_grant" (an installation.created webhook's code). The jobs process claims due
    rows (FOR UPDATE SKIP LOCKED on PostgreSQL) under a lease.
    """

    __tablename__ = "sentry_jobs"
    __table_args__ = (Index("ix_sentry_jobs_status_run_after", "status", "run_after"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))  # pending | running | done | failed
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    integration_id: Mapped[str | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE")
    )
    installation_uuid: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any] | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# ---------------------------------------------------------------- on-call (docs/on-call.md)


class ContactMethod(Base):
    """How to reach a person: the account email, or an Apprise URL kept encrypted."""

    __tablename__ = "contact_methods"
    __table_args__ = (
        # One account-email method per person (its address is the account's own).
        Index(
            "uq_contact_methods_account_email",
            "user_id",
            unique=True,
            sqlite_where=text("kind = 'email'"),
            postgresql_where=text("kind = 'email'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # "email" | "apprise"
    label: Mapped[str | None] = mapped_column(String(200))
    # Apprise URLs carry tokens and phone numbers: Fernet ciphertext. None for "email".
    target_ciphertext: Mapped[str | None] = mapped_column(Text)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    verified_at: Mapped[datetime | None]
    verified_by: Mapped[str | None] = mapped_column(String(320))
    tested_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    user: Mapped[User] = relationship()


class Schedule(Base):
    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    feed_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    feed_token_ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]

    layers: Mapped[list[ScheduleLayer]] = relationship(
        order_by="ScheduleLayer.position", cascade="all, delete-orphan"
    )
    overrides: Mapped[list[ScheduleOverride]] = relationship(
        order_by="ScheduleOverride.id", cascade="all, delete-orphan"
    )


class ScheduleLayer(Base):
    """A rotation; a higher `position` wins over a lower one wherever it is active."""

    __tablename__ = "schedule_layers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("schedules.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    shift_unit: Mapped[str] = mapped_column(String(10))  # hours | days | weeks
    shift_count: Mapped[int] = mapped_column(Integer)
    handoff_weekday: Mapped[int | None] = mapped_column(Integer)  # 0 = Monday
    handoff_time: Mapped[str] = mapped_column(String(5))  # "HH:MM", the zone's wall clock
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]

    members: Mapped[list[ScheduleLayerMember]] = relationship(
        order_by="ScheduleLayerMember.position", cascade="all, delete-orphan"
    )


class ScheduleLayerMember(Base):
    __tablename__ = "schedule_layer_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    layer_id: Mapped[int] = mapped_column(
        ForeignKey("schedule_layers.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)

    user: Mapped[User] = relationship()


class ScheduleOverride(Base):
    """This person covers from `starts_at` until `ends_at`; a later override wins."""

    __tablename__ = "schedule_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("schedules.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    created_at: Mapped[datetime]

    user: Mapped[User] = relationship()


class EscalationPolicy(Base):
    __tablename__ = "escalation_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    repeat: Mapped[int] = mapped_column(Integer, default=0)
    repeat_after_minutes: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]

    steps: Mapped[list[EscalationStep]] = relationship(
        order_by="EscalationStep.position", cascade="all, delete-orphan"
    )


class EscalationStep(Base):
    __tablename__ = "escalation_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[int] = mapped_column(
        ForeignKey("escalation_policies.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    delay_minutes: Mapped[int] = mapped_column(Integer)

    targets: Mapped[list[EscalationTarget]] = relationship(
        order_by="EscalationTarget.id", cascade="all, delete-orphan"
    )


class EscalationTarget(Base):
    """A user, a schedule (whoever is on call then), or a channel named but not yet bound:
    the channels table arrives with the notifications work, so channel targets keep the name
    and are resolved when the step fires."""

    __tablename__ = "escalation_step_targets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    step_id: Mapped[int] = mapped_column(
        ForeignKey("escalation_steps.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))  # user | schedule | channel
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    channel_name: Mapped[str | None] = mapped_column(String(200))

    user: Mapped[User | None] = relationship()
    schedule: Mapped[Schedule | None] = relationship()


class Escalation(Base):
    """One step instance of one escalation run of an incident: a due row for the jobs
    process, claimed under a lease (FOR UPDATE SKIP LOCKED on PostgreSQL)."""

    __tablename__ = "escalations"
    __table_args__ = (
        Index("ix_escalations_status_due_at", "status", "due_at"),
        # A step instance is written once per run: two writers cannot both plan it.
        Index(
            "uq_escalations_incident_id_run_repeat_step_index",
            "incident_id",
            "run",
            "repeat",
            "step_index",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    policy_id: Mapped[int] = mapped_column(
        ForeignKey("escalation_policies.id", ondelete="CASCADE"), index=True
    )
    run: Mapped[int] = mapped_column(Integer)  # 1 for the trigger, +1 per reopen/timeout
    reason: Mapped[str] = mapped_column(String(40))  # triggered | reopened | ack_timeout | ...
    started_at: Mapped[datetime]
    repeat: Mapped[int] = mapped_column(Integer)
    step_index: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # pending | done | cancelled
    outcome: Mapped[str | None] = mapped_column(String(20))  # paged | nobody | superseded
    due_at: Mapped[datetime]
    fired_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]


# The notification and job-run tables share this Base; imported here so that the metadata
# (and every `from app.store.models import ...` user) always knows them.
from app.store import job_models, notify_models  # noqa: E402, F401
