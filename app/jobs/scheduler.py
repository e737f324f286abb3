"""The scheduler: one process of its own, never inside gunicorn workers (jobs would run N times)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

from app.extensions import Bridge
from app.jobs.escalations import run_paging
from app.jobs.notify import start_sender
from app.jobs.prune import run_prune
from app.jobs.sentry import run_sentry_outbox, run_token_refresh
from app.jobs.spool import run_spool_drain

log = logging.getLogger(__name__)


def build_scheduler(bridge: Bridge) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(
        run_prune,
        "interval",
        args=[bridge],
        minutes=bridge.settings.prune_interval_minutes,
        id="prune_deliveries",
        max_instances=1,
        coalesce=True,
    )
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
    scheduler.add_job(
        run_token_refresh,
        "interval",
        args=[bridge, gateway],
        minutes=bridge.settings.sentry_token_refresh_interval_minutes,
        id="sentry_token_refresh",
        max_instances=1,
        coalesce=True,
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


def run_scheduler(bridge: Bridge) -> None:
    """Run the jobs until SIGTERM or SIGINT."""
    from app import channels

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
    run_prune(bridge)  # once at start, then on the interval
    try:
        scheduler.start()
    finally:
        stop_sender.set()
        # A send in flight finishes (or times out) first; an unrecorded one is re-sent
        # with the same id after its lease by the next jobs process.
        sender.join(timeout=bridge.settings.channel_timeout_seconds + 5)
