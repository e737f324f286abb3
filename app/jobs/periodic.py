"""Periodic singletons (prune, Sentry token refresh): once per interval cluster-wide.

Every jobs process schedules them; each firing first claims the interval's slot
(app/services/job_runs.py) and runs the job only if it got it. The firings are aligned
to the slots (a little after each slot starts, the same moment on every process), so
every interval is claimed by exactly one live process, whichever is quickest.

Claimed work (the Sentry outbox, notifications, escalation steps) is not one of these:
every process takes its own share of it in parallel. Nor is the spool drain: each
node's spool is drained by the jobs process beside it (docs/deploy.md).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from app.extensions import Bridge
from app.services import job_runs

log = logging.getLogger(__name__)
# Firings come this far into a slot (a fraction of it, at most 5 s): clocks of the
# jobs hosts may disagree by less than that and still name the same slot.
MAX_OFFSET_SECONDS = 5.0
OFFSET_FRACTION = 0.05


def node_name() -> str:
    """Who ran a job: host and process, so two jobs processes never share a name."""
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def offset_seconds(interval_seconds: int) -> float:
    return min(interval_seconds * OFFSET_FRACTION, MAX_OFFSET_SECONDS)


def first_firing(now: datetime, interval_seconds: int) -> datetime:
    """The next moment, after `now`, that is `offset_seconds` into a slot of the job."""
    slot = job_runs.slot_of(now, interval_seconds)
    offset = offset_seconds(interval_seconds)
    start = datetime.fromtimestamp(slot * interval_seconds + offset, UTC)
    while start <= now:
        start += timedelta(seconds=interval_seconds)
    return start


def run_once_per_interval(
    bridge: Bridge,
    job: str,
    interval_seconds: int,
    work: Callable[[], object],
    node: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> bool:
    """Run `work` if this process claims the current interval of `job`; whether it did."""
    node = node or node_name()
    with bridge.database.transaction() as session:
        run_id = job_runs.claim(session, job, interval_seconds, node, clock())
    if run_id is None:
        log.debug("periodic job %s: this interval already ran elsewhere", job)
        return False
    log.info("periodic job %s started on %s (run %d)", job, node, run_id)
    outcome = "failed"
    try:
        work()
        outcome = "done"
    except Exception:
        # Logged and recorded; the next interval tries again (on whichever process).
        log.exception("periodic job %s failed on %s", job, node)
    finally:
        try:
            with bridge.database.transaction() as session:
                job_runs.finish(session, run_id, clock(), outcome)
        except Exception:
            log.exception("periodic job %s: its run %d could not be recorded", job, run_id)
    return True
