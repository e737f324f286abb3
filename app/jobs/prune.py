"""Job: prune deliveries older than the retention period."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from app.extensions import Bridge
from app.services.retention import prune_deliveries

log = logging.getLogger(__name__)


def run_prune(bridge: Bridge) -> int:
    """Prune in short transactions until nothing old is left; returns the number removed."""
    cutoff = datetime.now(UTC) - timedelta(days=bridge.settings.delivery_retention_days)
    total = 0
    while True:
        with bridge.database.transaction() as session:
            removed = prune_deliveries(session, cutoff)
        total += removed
        if removed == 0:
            break
    log.info("pruned %d deliveries received before %s", total, cutoff.isoformat())
    return total
