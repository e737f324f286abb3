"""Job: fire due escalation steps and re-trigger incidents whose acknowledgement timed
out. Scheduled every BRIDGE_ESCALATION_POLL_MS (1 s) in the jobs process, so a step fires
within about a second of being due (issue 15 asks for 5 s); `page` is the outbox writer
(app/services/paging.py)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime

from app.extensions import Bridge
from app.services import ack_timeouts, escalations, paging

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


def run_paging(
    bridge: Bridge,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    worker: str | None = None,
    page: escalations.Page = paging.page,
) -> int:
    """One pass of the jobs process: acknowledgement timeouts first (they start runs whose
    first step is due at once), then every due step; how many steps fired."""
    with bridge.database.transaction() as session:
        retriggered = ack_timeouts.retrigger_unanswered(session, clock())
    for incident_id in retriggered:
        log.info("incident %s re-triggered: its acknowledgement timed out", incident_id)
    return run_due_escalations(bridge, page, clock, worker)
