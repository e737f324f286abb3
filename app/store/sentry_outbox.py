"""Intent-named queries of the Sentry job outbox (sentry_jobs): enrichment, write-back and
grant-exchange rows, claimed under a lease by the jobs process."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.store.models import SentryJob


class JobKind(StrEnum):
    ENRICH = "enrich"
    WRITE_BACK = "write_back"
    EXCHANGE_GRANT = "exchange_grant"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def pending_enrichment(session: Session, incident_id: int) -> SentryJob | None:
    """The incident's enrichment still waiting to run, if one is queued."""
    return session.scalar(
        select(SentryJob).where(
            SentryJob.kind == JobKind.ENRICH.value,
            SentryJob.incident_id == incident_id,
            SentryJob.status == JobStatus.PENDING.value,
        )
    )


def lock_due(session: Session, now: datetime, limit: int) -> list[SentryJob]:
    """Up to `limit` due jobs, or running ones whose lease ran out, oldest first, locked.

    SKIP LOCKED lets several job processes claim side by side on PostgreSQL; SQLite has no
    row locks, and its BEGIN IMMEDIATE (app/store/database.py) serialises claimers instead.
    """
    return list(
        session.scalars(
            select(SentryJob)
            .where(
                or_(
                    and_(SentryJob.status == JobStatus.PENDING.value, SentryJob.run_after <= now),
                    and_(
                        SentryJob.status == JobStatus.RUNNING.value,
                        SentryJob.locked_until < now,
                    ),
                )
            )
            .order_by(SentryJob.run_after, SentryJob.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def write_backs_since(
    session: Session, integration_id: str, since: datetime
) -> Iterable[SentryJob]:
    """The integration's write-backs sent (or being sent) at or after `since`."""
    return session.scalars(
        select(SentryJob).where(
            SentryJob.kind == JobKind.WRITE_BACK.value,
            SentryJob.integration_id == integration_id,
            SentryJob.status.in_([JobStatus.DONE.value, JobStatus.RUNNING.value]),
            SentryJob.updated_at >= since,
        )
    )
