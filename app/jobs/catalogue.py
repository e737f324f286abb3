"""What the jobs process runs, in words: `bridge jobs run --help` is built from this.

Kept apart from scheduler.py (which imports APScheduler) so that the help costs nothing;
tests/unit/test_jobs_catalogue.py checks that every scheduled job is described here.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class JobDescription:
    id: str
    every: str  # the interval, with the variable that sets it
    does: str


JOBS: tuple[JobDescription, ...] = (
    JobDescription(
        "prune_deliveries",
        "every BRIDGE_PRUNE_INTERVAL_MINUTES (60 min), and once at start",
        "deletes deliveries older than BRIDGE_DELIVERY_RETENTION_DAYS (30)",
    ),
    JobDescription(
        "spool_drain",
        "every BRIDGE_SPOOL_DRAIN_SECONDS (1 s)",
        "applies deliveries spooled on disk during a database outage, oldest first",
    ),
    JobDescription(
        "sentry_outbox",
        "every SENTRY_JOB_POLL_SECONDS (5 s)",
        "enriches new and reopened incidents from the Sentry API and writes "
        "acknowledge/resolve back to Sentry",
    ),
    JobDescription(
        "sentry_token_refresh",
        "every SENTRY_TOKEN_REFRESH_INTERVAL_MINUTES (5 min)",
        "refreshes Sentry OAuth tokens that expire within SENTRY_TOKEN_REFRESH_MARGIN_MINUTES (15)",
    ),
    JobDescription(
        "escalations",
        "every BRIDGE_ESCALATION_POLL_MS (1000 ms)",
        "pages the next escalation step and applies acknowledgement timeouts",
    ),
    JobDescription(
        "notification sender",
        "a thread of its own, woken at once (PostgreSQL) or every BRIDGE_NOTIFY_POLL_MS (200 ms)",
        "sends queued notifications to channels, with retries",
    ),
)


def jobs_help() -> str:
    """The help of `bridge jobs run`: one paragraph per job (\\b keeps click from rewrapping)."""
    lines = [
        "Run the background jobs until stopped (SIGTERM or Ctrl-C). Run one jobs process "
        "per database, never inside the web workers.",
        "",
        "It runs:",
    ]
    for job in JOBS:
        lines += ["", "\b", f"{job.id}:"]
        lines += textwrap.wrap(
            f"{job.every}; {job.does}.", 72, initial_indent="  ", subsequent_indent="  "
        )
    lines += ["", "APScheduler's per-run lines are logged only with LOG_LEVEL=DEBUG."]
    return "\n".join(lines)
