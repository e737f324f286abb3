"""Jobs: work the Sentry outbox (enrichment, write-back, grant exchange); refresh tokens."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from app.extensions import Bridge
from app.sentry.errors import (
    SentryError,
    SentryGrantRejected,
    SentryNotConfigured,
    SentryRateLimited,
    SentryRequestRefused,
    SentryResourceMissing,
)
from app.services import sentry_jobs
from app.services.sentry_gateway import SentryGateway

log = logging.getLogger(__name__)
# A claimed job not finished within the lease is presumed abandoned and claimed again.
LEASE = timedelta(minutes=5)
BATCH = 20
# Conditions that another attempt cannot change.
PERMANENT = (SentryResourceMissing, SentryRequestRefused, SentryGrantRejected, SentryNotConfigured)


def run_sentry_outbox(bridge: Bridge, gateway: SentryGateway, limit: int = BATCH) -> int:
    """Claim due jobs in a short transaction, then do each; returns how many were done."""
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        claimed = [
            sentry_jobs.view(job) for job in sentry_jobs.claim_due(session, now, limit, LEASE)
        ]
    done = 0
    max_attempts = bridge.settings.sentry_job_max_attempts
    for job in claimed:
        try:
            note = gateway.run(job)
        except SentryRateLimited as error:
            not_before = datetime.now(UTC) + timedelta(seconds=error.retry_after)
            _retry(bridge, job, error.message, max_attempts, not_before)
        except PERMANENT as error:
            with bridge.database.transaction() as session:
                sentry_jobs.fail(session, job.id, datetime.now(UTC), error.message)
            log.warning("sentry job %s (%s) failed for good: %s", job.id, job.kind, error.code)
        except SentryError as error:
            _retry(bridge, job, error.message, max_attempts)
        except Exception as error:
            # A bug or an outage of our own: keep the job for another attempt, never lose it.
            log.exception("sentry job %s (%s) crashed", job.id, job.kind)
            _retry(bridge, job, f"internal error: {type(error).__name__}", max_attempts)
        else:
            with bridge.database.transaction() as session:
                sentry_jobs.finish(session, job.id, datetime.now(UTC), note)
            done += 1
            log.info("sentry job %s (%s) done%s", job.id, job.kind, f": {note}" if note else "")
    return done


def _retry(
    bridge: Bridge,
    job: sentry_jobs.JobView,
    message: str,
    max_attempts: int,
    not_before: datetime | None = None,
) -> None:
    with bridge.database.transaction() as session:
        status = sentry_jobs.retry_later(
            session, job.id, datetime.now(UTC), message, max_attempts, not_before
        )
    log.warning(
        "sentry job %s (%s) attempt %d: %s → %s", job.id, job.kind, job.attempts, message, status
    )


def run_token_refresh(bridge: Bridge, gateway: SentryGateway) -> tuple[int, int]:
    """Refresh tokens that expire soon, each stored in its own short transaction."""
    refreshed, failed = gateway.refresh_expiring()
    if refreshed or failed:
        log.info("sentry tokens: %d refreshed, %d failed", refreshed, failed)
    return refreshed, failed
