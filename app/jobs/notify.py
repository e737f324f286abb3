"""The notification sender: a thread of the jobs process that works the outbox (SPEC 7).

Not an APScheduler interval: the first attempt must start within a second of the commit
that queued it. On PostgreSQL the thread LISTENs on a connection of its own and wakes on
the NOTIFY sent with every outbox INSERT (delivered at commit); on SQLite it polls every
BRIDGE_NOTIFY_POLL_MS (200 ms). Every few seconds it also releases ended silences.

Per batch: claim in one short transaction, send each with no transaction open (an HTTP
call can take the adapter's whole timeout), record each outcome in its own transaction.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from app.channels.base import ChannelSettings, ChannelTarget, Message, SendResult
from app.domain import ack_link
from app.extensions import Bridge
from app.services import notification_outbox as outbox
from app.services.notification_documents import build_message
from app.services.notifications import WAKE_CHANNEL
from app.services.silences import release_ended

log = logging.getLogger(__name__)
Send = Callable[[ChannelTarget, Message, ChannelSettings], SendResult]
Clock = Callable[[], datetime]
BATCH = 20
SILENCE_CHECK_SECONDS = 5.0
# On PostgreSQL, without a NOTIFY, look anyway this often: retries and expired leases
# become due without anyone announcing them.
LISTEN_IDLE_SECONDS = 1.0


def _now() -> datetime:
    return datetime.now(UTC)


def channel_settings(bridge: Bridge) -> ChannelSettings:
    settings = bridge.settings
    return ChannelSettings(
        timeout_seconds=settings.channel_timeout_seconds,
        smtp_url=settings.smtp_url,
        smtp_from=settings.smtp_from,
        pagerduty_events_url=settings.pagerduty_events_url,
        public_base_url=settings.public_base_url,
    )


class NotificationSender:
    """Claims, sends and records; `send` is the channel adapters' entry point (injected)."""

    def __init__(
        self,
        bridge: Bridge,
        send: Send,
        clock: Clock = _now,
        worker: str | None = None,
        jitter: Callable[[], float] = random.random,
        listen_idle_seconds: float = LISTEN_IDLE_SECONDS,
    ) -> None:
        self.bridge = bridge
        self.send = send
        self.clock = clock
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.jitter = jitter
        self.listen_idle_seconds = listen_idle_seconds
        self.settings = channel_settings(bridge)
        self.lease = timedelta(seconds=bridge.settings.notify_lease_seconds)
        self.retry_window = timedelta(seconds=bridge.settings.notify_retry_window_seconds)
        self.ack_key = ack_link.link_key(bridge.session_secret)
        self.base_url = (
            bridge.settings.public_base_url
            or f"http://{bridge.settings.host}:{bridge.settings.port}"
        ).rstrip("/")

    def run_once(self, limit: int = BATCH) -> int:
        """Claim up to `limit` due notifications and work them; how many were claimed."""
        # Eager: on SQLite the claim must not queue behind a storm's webhook writers.
        with self.bridge.database.eager_transaction() as session:
            claimed = outbox.claim_due(session, self.clock(), limit, self.lease, self.worker)
        for item in claimed:
            self._deliver(item)
        return len(claimed)

    def _deliver(self, item: outbox.Claimed) -> None:
        now = self.clock()
        try:
            target = outbox.target_of(item, self.bridge.secrets)
            message = build_message(
                item.id, item.type, now, item.document, self.base_url, self._ack_url(item, now)
            )
            result = self.send(target, message, self.settings)
        except Exception as error:  # a bug of ours must not stop the loop nor lose the row
            log.exception("notification %s crashed before an answer", item.id)
            result = SendResult("retry", error=f"internal error: {type(error).__name__}")
        with self.bridge.database.transaction() as session:
            status = outbox.record_attempt(
                session, item, result, self.clock(), self.worker, self.jitter(), self.retry_window
            )
        log.info(
            "notification %s (%s to %s) attempt %d: %s → %s",
            item.id,
            item.type,
            f"channel {item.channel_id}"
            if item.contact_method_id is None
            else f"contact method {item.contact_method_id}",
            item.attempts,
            result.outcome,
            status,
        )

    def _ack_url(self, item: outbox.Claimed, now: datetime) -> str | None:
        if item.incident_id is None:
            return None
        token = ack_link.sign(
            self.ack_key,
            item.id,
            item.incident_id,
            item.channel_id,
            now,
            timedelta(hours=self.bridge.settings.ack_link_ttl_hours),
            contact_method_id=item.contact_method_id,
        )
        return f"{self.base_url}/ack/{token}"

    def release_silences(self) -> int:
        with self.bridge.database.transaction() as session:
            return release_ended(session, self.clock())

    def drain(self) -> int:
        """Work batches until nothing is due; how many were claimed in all."""
        total = 0
        while (claimed := self.run_once()) > 0:
            total += claimed
        return total

    def run_forever(self, stop: threading.Event) -> None:
        """Work the outbox until `stop` is set."""
        waiter = _waiter(self.bridge, self.listen_idle_seconds)
        next_silence_check = 0.0
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() >= next_silence_check:
                        self.release_silences()
                        next_silence_check = time.monotonic() + SILENCE_CHECK_SECONDS
                    if self.run_once() == BATCH:
                        continue  # more may be due: no wait
                except Exception:  # an outage: log, back off a little, keep going
                    log.exception("notification sender pass failed")
                    stop.wait(1.0)
                    continue
                waiter(stop)
        finally:
            close = getattr(waiter, "close", None)
            if close is not None:
                close()


def _waiter(bridge: Bridge, idle: float) -> Callable[[threading.Event], None]:
    """How the loop waits for work: LISTEN on PostgreSQL, a short sleep on SQLite."""
    poll = bridge.settings.notify_poll_ms / 1000
    if not bridge.database.is_postgresql:

        def sleep(stop: threading.Event) -> None:
            stop.wait(poll)

        return sleep
    return _Listener(bridge, poll, idle)


class _Listener:
    """A dedicated autocommit connection LISTENing for outbox NOTIFYs."""

    def __init__(self, bridge: Bridge, poll: float, idle: float) -> None:
        self.bridge = bridge
        self.poll = poll
        self.idle = idle
        self.connection: Any = None

    def _connect(self) -> Any:
        import psycopg

        # A connection of its own, outside the pool: LISTEN state must not be handed on.
        url = self.bridge.database.engine.url.set(drivername="postgresql")
        connection = psycopg.connect(
            url.render_as_string(hide_password=False),
            autocommit=True,
            connect_timeout=self.bridge.settings.database_connect_timeout_seconds,
        )
        connection.execute(f"LISTEN {WAKE_CHANNEL}")
        return connection

    def __call__(self, stop: threading.Event) -> None:
        try:
            if self.connection is None:
                self.connection = self._connect()
            # In short slices, so that a stop is seen promptly; a NOTIFY ends the wait at once.
            deadline = time.monotonic() + self.idle
            while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                if list(self.connection.notifies(timeout=min(left, 0.5), stop_after=1)):
                    return
        except Exception:  # the database went away: poll until it is back
            log.warning("notification LISTEN connection lost; polling meanwhile", exc_info=True)
            self.close()
            stop.wait(self.poll)

    def close(self) -> None:
        if self.connection is not None:
            # Closing a connection that already died may fail; there is nothing to do then.
            with contextlib.suppress(Exception):
                self.connection.close()
            self.connection = None


def start_sender(bridge: Bridge, send: Send, stop: threading.Event) -> threading.Thread:
    """Run a NotificationSender in a daemon thread of its own until `stop` is set."""
    sender = NotificationSender(bridge, send)
    thread = threading.Thread(
        target=sender.run_forever, args=(stop,), name="notification-sender", daemon=True
    )
    thread.start()
    return thread
