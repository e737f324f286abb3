"""Job: apply deliveries kept in the local spool during a database outage."""

from __future__ import annotations

import logging

from app.extensions import Bridge
from app.services.spooled_deliveries import DrainReport, drain_spool

log = logging.getLogger(__name__)
# While the web workers are still spooling (admission control under overload), the drain
# would take CPU and database from them and so push more into the spool: it waits until
# no delivery was spooled for this long, or until the oldest has waited MAX_HOLD_SECONDS.
# That hold is short: a spooled delivery is an alert someone has not been paged for yet
# (20 s held a storm's pages back by ~3 s on SQLite; issue 14's target is 1 s).
SETTLE_SECONDS = 0.5
MAX_HOLD_SECONDS = 1.0


def run_spool_drain(bridge: Bridge, hold_while_spooling: bool = True) -> DrainReport:
    """Apply what the spool holds, oldest first; log only when there was something.

    The periodic job holds off while deliveries are still being spooled (`held` in the
    report); `bridge spool drain`, an operator's command, does not.
    """
    spool = bridge.spool
    if (
        hold_while_spooling
        and spool.pending()
        and spool.newest_age_seconds() < SETTLE_SECONDS
        and spool.oldest_age_seconds() < MAX_HOLD_SECONDS
    ):
        return DrainReport(0, 0, spool.pending_deliveries(), False, held=True)
    report = drain_spool(
        bridge.database, bridge.secrets, bridge.spool, bridge.settings.max_body_bytes
    )
    done = report.applied + report.already_applied + report.refused
    if done or report.remaining or report.quarantined:
        log.info(
            "spool: applied %d, already applied %d, stored refused %d, quarantined %d, "
            "remaining %d, in %.2f s (%d transactions, %.0f deliveries/s)%s",
            report.applied,
            report.already_applied,
            report.refused,
            report.quarantined,
            report.remaining,
            report.seconds,
            report.transactions,
            report.rate,
            " (database still unavailable)" if report.stopped_by_outage else "",
        )
    return report
