"""Job: fire due escalation steps. Not scheduled yet: it needs a `page` that writes the
notifications outbox (issue 14); the integrator passes one and adds the job to
app/jobs/scheduler.py at a few seconds' interval (a step fires within 5 s of due)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime

from app.extensions import Bridge
from app.services import escalations

log = logging.getLogger(__name__)
BATCH = 50


def worker_name() -> str:
    """Who holds a lease: host and process, so two jobs processes never share a name."""
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def run_due_escalations(
    bridge: Bridge,
    page: escalations.Page,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    worker: str | None = None,
) -> int:
    """Claim due rows, fire each in its own transaction, until none are due; count fired.

    Looping matters: a step that paged nobody makes the next one due at once, and overdue
    steps after an outage are planned one after another as each fires.
    """
    worker = worker or worker_name()
    fired = 0
    while True:
        with bridge.database.transaction() as session:
            claimed = escalations.claim_due_escalations(session, clock(), worker, BATCH)
        if not claimed:
            return fired
        for escalation_id in claimed:
            try:
                with bridge.database.transaction() as session:
                    outcome = escalations.fire_escalation(
                        session, escalation_id, worker, clock(), page
                    )
            except Exception:
                # Rolled back: the row stays claimed until its lease runs out, then is
                # tried again; the loop ends because a leased row is not claimable.
                log.exception("escalation %s could not be fired", escalation_id)
                continue
            if outcome is not None:
                fired += 1
                log.info("escalation %s fired: %s", escalation_id, outcome.outcome)
