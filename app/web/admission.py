"""Admission control: a worker applies only so many deliveries against the database at once.

Sentry waits one second and never retries an internal integration, so a delivery that
would start applying late is better kept in the durable spool at once (answered 202
"spooled", applied in order by the jobs process) than queued behind the database. Each
worker process holds `slots` permits (BRIDGE_APPLY_CONCURRENCY); a delivery waits for one
at most until BRIDGE_ADMISSION_WAIT_MS after it *arrived at the worker* (the time its
connection was handed to a thread, config/gunicorn_worker.py), so time spent queued
behind busy threads counts too. A request already older than the sender's deadline when
the app sees it is never applied.

The stamp starts when a worker accepts the connection. Under overload connections wait
in the kernel's accept queue before that, unseen by the stamp, and every delivery a
worker applies then takes CPU from answering the others: while more than
BRIDGE_ADMISSION_BACKLOG connections wait there (the worker's `bridge.listen_backlog`,
config/gunicorn_worker.py), a delivery is spooled at once (`spooled_backlog`), the cheap
path, so that the server answers what it is offered and applies the rest from the spool.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

log = logging.getLogger(__name__)

# Sentry's own timeout for a webhook answer.
SENDER_DEADLINE_SECONDS = 1.0
# The WSGI environ key the gunicorn worker stamps with the arrival time (epoch seconds).
ARRIVED_AT_KEY = "bridge.arrived_at"
# ...and with a function that says how many connections wait to be accepted (or None).
LISTEN_BACKLOG_KEY = "bridge.listen_backlog"

ADMISSIONS = Counter(
    "bridge_admissions_total",
    "Webhook deliveries by admission decision: admitted (applied now), spooled_busy (no "
    "slot within the admission budget), spooled_late (older than the sender's deadline "
    "when the app saw it), spooled_backlog (connections waiting to be accepted: the "
    "server is not keeping up), spooled_lock_wait (the database answered but the delivery "
    "waited too long on it), spooled_before_commit (applied, but too late to commit and "
    "answer within the deadline: rolled back).",
    ["decision"],
)
LATE_ANSWERS = Counter(
    "bridge_deliveries_answered_late_total",
    "Deliveries applied (not spooled) and answered more than the sender's 1-second "
    "deadline after they arrived: answers the sender has most likely given up on.",
)


@dataclass(frozen=True)
class Admitted:
    """The decision for one delivery: `ok` to apply now, else why it goes to the spool."""

    ok: bool
    decision: str
    waited_seconds: float


class AdmissionControl:
    """One per worker process: `slots` deliveries apply at once, the others wait a little."""

    def __init__(
        self,
        slots: int,
        wait_seconds: float,
        deadline_seconds: float = SENDER_DEADLINE_SECONDS,
        max_waiting: int | None = None,
        max_backlog: int | None = None,
    ) -> None:
        self.slots = slots
        self.wait_seconds = wait_seconds
        self.deadline_seconds = deadline_seconds
        # At most this many deliveries wait for a slot; beyond them one is spooled at once:
        # under overload a thread waiting out the budget is a thread not answering others.
        self.max_waiting = 2 * slots if max_waiting is None else max_waiting
        # More connections than this waiting to be accepted: spool without trying (None:
        # never decided on the backlog).
        self.max_backlog = max_backlog
        self._permits = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._waiting = 0

    @contextmanager
    def slot(
        self, arrived_at: float, now: float | None = None, backlog: int | None = None
    ) -> Iterator[Admitted]:
        """Hold an apply slot for the block if one is free by `arrived_at` + the budget,
        unless more than `max_backlog` connections wait to be accepted (`backlog`)."""
        now = time.time() if now is None else now
        at_once = self.at_once(arrived_at, now, backlog)
        if at_once is not None:
            yield at_once
            return
        age = now - arrived_at
        # Past the budget already (queued behind busy threads): too late to start, even
        # with a slot free, since what is left of the second is needed to apply it.
        remaining = self.wait_seconds - age
        acquired = remaining > 0 and (
            self._permits.acquire(blocking=False) or self._wait_for_slot(remaining)
        )
        if not acquired:
            yield self._decided(Admitted(False, "spooled_busy", time.time() - arrived_at))
            return
        try:
            yield self._decided(Admitted(True, "admitted", time.time() - arrived_at))
        finally:
            self._permits.release()

    def at_once(self, arrived_at: float, now: float, backlog: int | None) -> Admitted | None:
        """The decision to spool without waiting for a slot (counted), or None: too old
        for the sender's deadline already, or too many connections waiting to be accepted.
        Made before Flask for most overloaded deliveries (app/web/spool_first.py)."""
        age = now - arrived_at
        if age >= self.deadline_seconds:
            return self._decided(Admitted(False, "spooled_late", age))
        if self.max_backlog is not None and backlog is not None and backlog > self.max_backlog:
            return self._decided(Admitted(False, "spooled_backlog", age))
        return None

    def _wait_for_slot(self, seconds: float) -> bool:
        with self._lock:
            if self._waiting >= self.max_waiting:
                return False
            self._waiting += 1
        try:
            return self._permits.acquire(timeout=seconds)
        finally:
            with self._lock:
                self._waiting -= 1

    @staticmethod
    def _decided(admitted: Admitted) -> Admitted:
        ADMISSIONS.labels(decision=admitted.decision).inc()
        return admitted

    def answered(self, arrived_at: float, spooled: bool) -> None:
        """Count an admitted delivery answered past the sender's deadline without being
        spooled (should be none: the bench's overload scenario reads this counter)."""
        age = time.time() - arrived_at
        if age > self.deadline_seconds and not spooled:
            LATE_ANSWERS.inc()
            log.warning("delivery applied but answered %.0f ms after it arrived", age * 1000)


def arrived_at(environ: dict[str, Any]) -> float:
    """When the request reached this worker (epoch seconds): the worker's stamp, else now."""
    stamp = environ.get(ARRIVED_AT_KEY)
    return float(stamp) if isinstance(stamp, int | float) else time.time()


def listen_backlog(environ: dict[str, Any]) -> int | None:
    """Connections waiting to be accepted by the server now, where the worker can say."""
    reader = environ.get(LISTEN_BACKLOG_KEY)
    if not callable(reader):
        return None
    waiting = reader()
    return waiting if isinstance(waiting, int) else None


def spooled_for_lock_wait() -> None:
    ADMISSIONS.labels(decision="spooled_lock_wait").inc()


def spooled_before_commit() -> None:
    ADMISSIONS.labels(decision="spooled_before_commit").inc()
