"""Job: apply deliveries kept in the local spool during a database outage."""

from __future__ import annotations

import logging

from app.extensions import Bridge
from app.services.spool import DrainReport, drain_spool

log = logging.getLogger(__name__)


def run_spool_drain(bridge: Bridge) -> DrainReport:
    """Apply what the spool holds, oldest first; log only when there was something."""
    report = drain_spool(
        bridge.database, bridge.secrets, bridge.spool, bridge.settings.max_body_bytes
    )
    if report.applied or report.already_applied or report.remaining or report.quarantined:
        log.info(
            "spool: applied %d, already applied %d, quarantined %d, remaining %d, in %.2f s "
            "(%d transactions, %.0f deliveries/s)%s",
            report.applied,
            report.already_applied,
            report.quarantined,
            report.remaining,
            report.seconds,
            report.transactions,
            report.rate,
            " (database still unavailable)" if report.stopped_by_outage else "",
        )
    return report
