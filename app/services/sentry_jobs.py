"""The Sentry job outbox: rows written with the change that needs them, claimed later.

Enrichment, write-back and grant exchanges are rows in sentry_jobs, added in the same
transaction as the incident or delivery that calls for them, so nothing is sent before
commit and nothing is lost if the process dies. The jobs process claims due rows under a
lease (FOR UPDATE SKIP LOCKED on PostgreSQL) and reports each outcome back here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.store import sentry_outbox as outbox
from app.store.models import Incident, SentryJob, TimelineEntry
from app.store.sentry_outbox import JobKind, JobStatus

MAX_ERROR_LENGTH = 500
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)


def enqueue(
    session: Session,
    kind: JobKind,
    now: datetime,
    *,
    incident_id: int | None = None,
    integration_id: str | None = None,
    installation_uuid: str | None = None,
    payload: dict[str, Any] | None = None,
) -> SentryJob:
    job = SentryJob(
        kind=kind.value,
        status=JobStatus.PENDING.value,
        incident_id=incident_id,
        integration_id=integration_id,
        installation_uuid=installation_uuid,
        payload=payload,
        attempts=0,
        run_after=now,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    session.flush()
    return job


def enqueue_enrichment(
    session: Session,
    incident_id: int,
    sentry_issue_id: str | None,
    integration_id: str,
    installation_uuid: str | None,
    now: datetime,
    is_new_incident: bool = False,
) -> SentryJob | None:
    """Ask for the incident's Sentry details, unless it names no issue or one is queued."""
    if not sentry_issue_id:
        return None
    # An incident opened in this transaction cannot have a job yet: skip the look.
    queued = None if is_new_incident else outbox.pending_enrichment(session, incident_id)
    if queued is not None:
        return queued
    return enqueue(
        session,
        JobKind.ENRICH,
        now,
        incident_id=incident_id,
        integration_id=integration_id,
        installation_uuid=installation_uuid,
    )


def claim_due(session: Session, now: datetime, limit: int, lease: timedelta) -> list[SentryJob]:
    """Take up to `limit` due jobs (or ones whose lease ran out) for this worker."""
    jobs = outbox.lock_due(session, now, limit)
    for job in jobs:
        job.status = JobStatus.RUNNING.value
        job.attempts += 1
        job.locked_until = now + lease
        job.updated_at = now
    session.flush()
    return jobs


def finish(session: Session, job_id: int, now: datetime, note: str | None = None) -> None:
    job = session.get(SentryJob, job_id)
    if job is None:
        return
    job.status = JobStatus.DONE.value
    job.locked_until = None
    job.last_error = note[:MAX_ERROR_LENGTH] if note else None
    job.updated_at = now
    session.flush()


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, ... capped at an hour."""
    delay: timedelta = BACKOFF_BASE * (2 ** max(attempts - 1, 0))
    return min(delay, BACKOFF_CAP)


def retry_later(
    session: Session,
    job_id: int,
    now: datetime,
    error: str,
    max_attempts: int,
    not_before: datetime | None = None,
) -> str:
    """Reschedule with backoff, or give up after max_attempts. Returns the new status."""
    job = session.get(SentryJob, job_id)
    if job is None:
        return "gone"
    job.last_error = error[:MAX_ERROR_LENGTH]
    job.locked_until = None
    job.updated_at = now
    if job.attempts >= max_attempts:
        job.status = JobStatus.FAILED.value
    else:
        job.status = JobStatus.PENDING.value
        job.run_after = max(now + backoff(job.attempts), not_before or now)
    session.flush()
    return job.status


def fail(session: Session, job_id: int, now: datetime, error: str) -> None:
    job = session.get(SentryJob, job_id)
    if job is None:
        return
    job.status = JobStatus.FAILED.value
    job.locked_until = None
    job.last_error = error[:MAX_ERROR_LENGTH]
    job.updated_at = now
    session.flush()


@dataclass(frozen=True)
class JobView:
    """What a worker needs to know of a claimed job, outside any session."""

    id: int
    kind: str
    attempts: int
    incident_id: int | None
    integration_id: str | None
    installation_uuid: str | None
    payload: dict[str, Any]


def view(job: SentryJob) -> JobView:
    return JobView(
        id=job.id,
        kind=job.kind,
        attempts=job.attempts,
        incident_id=job.incident_id,
        integration_id=job.integration_id,
        installation_uuid=job.installation_uuid,
        payload=dict(job.payload or {}),
    )


def apply_enrichment(
    session: Session, incident_id: int, summary: dict[str, Any], now: datetime
) -> Incident | None:
    """Land the Sentry summary on the incident and say so in its timeline."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        return None
    incident.enrichment = summary
    incident.updated_at = now
    _fill_facts(incident, summary)
    parts = []
    if "event_count" in summary:
        parts.append(f"{summary['event_count']} events")
    if "user_count" in summary:
        parts.append(f"{summary['user_count']} users")
    if "release" in summary:
        parts.append(f"release {summary['release']}")
    session.add(
        TimelineEntry(
            incident_id=incident.id,
            at=now,
            kind="enriched",
            actor="Sentry API",
            message="Enriched from Sentry" + (f": {', '.join(parts)}" if parts else ""),
            data={"fields": sorted(summary)},
        )
    )
    session.flush()
    return incident


# What enrichment knows that the payloads may not have said (an event alert names no
# counts, an issue webhook no release): it fills only what is still empty, bounded as the
# payload's values are; the payload's own word stays. Counts only grow, so the larger
# of the payload's and the fetched one is the newer.
_FILLED_FROM_SUMMARY = (
    ("culprit", "culprit", 500),
    ("release", "release", 255),
    ("platform", "platform", 64),
)
_COUNTS_FROM_SUMMARY = (("sentry_count", "event_count"), ("sentry_user_count", "user_count"))


def _fill_facts(incident: Incident, summary: dict[str, Any]) -> None:
    for column, key, limit in _FILLED_FROM_SUMMARY:
        value = summary.get(key)
        if getattr(incident, column) is None and isinstance(value, str) and value:
            setattr(incident, column, value[:limit])
    for column, key in _COUNTS_FROM_SUMMARY:
        value = summary.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            continue
        current = getattr(incident, column)
        setattr(incident, column, value if current is None else max(current, value))
    environment = (summary.get("tags") or {}).get("environment")
    if incident.environment is None and isinstance(environment, str) and environment:
        incident.environment = environment[:255]
