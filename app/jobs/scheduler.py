"""The scheduler: one process of its own, never inside gunicorn workers (jobs would run N times)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

from app.extensions import Bridge
from app.jobs.escalations import run_paging
from app.jobs.notify import start_sender
from app.jobs.periodic import first_firing, run_once_per_interval
from app.jobs.prune import run_prune
from app.jobs.sentry import run_sentry_outbox, run_token_refresh
from app.jobs.spool_drain import run_spool_drain

log = logging.getLogger(__name__)


PRUNE = "prune_deliveries"
TOKEN_REFRESH = "sentry_token_refresh"  # noqa: S105 - a job name, not a secret


def prune_interval(bridge: Bridge) -> int:
    return bridge.settings.prune_interval_minutes * bridge.settings.job_minute_seconds


def _once_per_interval(
    scheduler: BlockingScheduler,
    bridge: Bridge,
    job: str,
    interval_seconds: int,
    work: Callable[[], object],
) -> None:
    scheduler.add_job(
        run_once_per_interval,
        "interval",
        args=[bridge, job, interval_seconds, work],
        seconds=interval_seconds,
        start_date=first_firing(datetime.now(UTC), interval_seconds),
        id=job,
        max_instances=1,
        coalesce=True,
    )


def build_scheduler(bridge: Bridge) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone="UTC")
    # Periodic singletons: every jobs process fires them, one per interval runs them
    # (app/jobs/periodic.py). The rest below is claimed work, shared out in parallel.
    _once_per_interval(scheduler, bridge, PRUNE, prune_interval(bridge), partial(run_prune, bridge))
    scheduler.add_job(
        run_spool_drain,
        "interval",
        args=[bridge],
        seconds=bridge.settings.spool_drain_seconds,
        id="spool_drain",
        max_instances=1,
        coalesce=True,
    )
    gateway = bridge.sentry_gateway
    scheduler.add_job(
        run_sentry_outbox,
        "interval",
        args=[bridge, gateway],
        seconds=bridge.settings.sentry_job_poll_seconds,
        id="sentry_outbox",
        max_instances=1,
        coalesce=True,
    )
    _once_per_interval(
        scheduler,
        bridge,
        TOKEN_REFRESH,
        bridge.settings.sentry_token_refresh_interval_minutes * bridge.settings.job_minute_seconds,
        partial(run_token_refresh, bridge, gateway),
    )
    # Escalation steps are due rows: a step fires within a poll of its due time; several
    # jobs processes share them (claimed with SKIP LOCKED, app/services/escalations.py).
    scheduler.add_job(
        run_paging,
        "interval",
        args=[bridge],
        seconds=bridge.settings.escalation_poll_ms / 1000,
        id="escalations",
        max_instances=1,
        coalesce=True,
    )
    return scheduler


# APScheduler logs "Running job ..." and "... executed successfully" at INFO for every run:
# several lines a second with the short intervals above, drowning what matters.
_PER_RUN_LOGGERS = ("apscheduler.executors.default",)


def quiet_per_run_logs(log_level: str) -> None:
    """Keep APScheduler's per-run lines out of the log unless LOG_LEVEL is DEBUG."""
    level = logging.DEBUG if log_level.upper() == "DEBUG" else logging.WARNING
    for name in _PER_RUN_LOGGERS:
        logging.getLogger(name).setLevel(level)


def run_scheduler(bridge: Bridge) -> None:
    """Run the jobs until SIGTERM or SIGINT."""
    from app import channels

    quiet_per_run_logs(bridge.settings.log_level)
    scheduler = build_scheduler(bridge)
    # Notifications must start within a second of their commit: a thread of their own
    # (app/jobs/notify.py), woken by LISTEN/NOTIFY or a short poll, not an interval job.
    stop_sender = threading.Event()
    sender = start_sender(bridge, channels.send, stop_sender)

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("scheduler stopping on signal %d", signum)
        stop_sender.set()
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("scheduler started: %s", ", ".join(job.id for job in scheduler.get_jobs()))
    # At start too, unless another process already pruned in this interval.
    run_once_per_interval(bridge, PRUNE, prune_interval(bridge), partial(run_prune, bridge))
    try:
        scheduler.start()
    finally:
        stop_sender.set()
        # A send in flight finishes (or times out) first; an unrecorded one is re-sent
        # with the same id after its lease by the next jobs process.
        sender.join(timeout=bridge.settings.channel_timeout_seconds + 5)
