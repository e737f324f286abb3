"""Job: prune deliveries older than the retention period."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from app.extensions import Bridge
from app.services import job_runs
from app.services.retention import prune_deliveries, prune_finished_jobs

log = logging.getLogger(__name__)


def run_prune(bridge: Bridge) -> int:
    """Prune in short transactions until nothing old is left; returns the number removed."""
    cutoff = datetime.now(UTC) - timedelta(days=bridge.settings.delivery_retention_days)
    total = jobs = 0
    while True:
        with bridge.database.transaction() as session:
            removed = prune_deliveries(session, cutoff)
            finished = prune_finished_jobs(session, cutoff)
        total += removed
        jobs += finished
        if removed == 0 and finished == 0:
            break
    with bridge.database.transaction() as session:
        runs = job_runs.prune(session, cutoff)
    log.info(
        "pruned %d deliveries, %d finished jobs and %d job runs from before %s",
        total,
        jobs,
        runs,
        cutoff.isoformat(),
    )
    if bridge.database.engine.dialect.name == "sqlite":
        # SQLite keeps no statistics unless asked; the planner needs them as tables grow.
        with bridge.database.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA optimize")
    return total
