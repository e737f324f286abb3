"""A client-side deadline for PostgreSQL statements: a database that stops answering.

PostgreSQL's own statement_timeout only helps while the server runs: a frozen server, a
stalled proxy or a half-dead link never answers, and libpq waits for ever (TCP keepalives
and tcp_user_timeout catch only some of these, and only after tens of seconds). So each
statement is given a deadline; one thread per process shuts down the socket of any
connection whose statement is still unanswered past it. The driver then fails the
statement as a lost connection, the pool discards the connection, and the webhook sends
the delivery to the spool.

A statement past its deadline is first cancelled the server's way (a cancel request on a
connection of its own): a server that runs answers it at once, and the statement fails
with SQLSTATE 57014 query_canceled on a connection that stays usable. That is a lock wait
or slow work, not an outage (app/store/database.py::is_busy). Only when the statement is
still unanswered CANCEL_GRACE_SECONDS later is the socket cut: that server is not
answering at all.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from typing import Any

from sqlalchemy import Engine, event

# An execution option: this connection's statements get this many seconds, not the default.
DEADLINE_OPTION = "bridge_statement_deadline"
# An execution option: no statement of this connection may run past this time.monotonic()
# (a webhook's transaction must be over before its sender stops waiting).
DEADLINE_AT_OPTION = "bridge_transaction_deadline_at"
# How often the watchdog looks: the deadlines it enforces are this much late at most.
_TICK_SECONDS = 0.05
# How long a cancelled statement may take to fail before its socket is cut.
CANCEL_GRACE_SECONDS = 0.2
# Stages of an armed statement: waiting for its deadline, or cancelled and given the grace.
_ARMED, _CANCELLED = 0, 1


class StatementWatchdog:
    """Armed before each statement and COMMIT, disarmed when it returns."""

    def __init__(self, default_seconds: float) -> None:
        self.default_seconds = default_seconds
        self._lock = threading.Lock()
        self._armed: dict[int, tuple[float, int, Any, int]] = {}
        self._owner_pid: int | None = None

    def arm(self, dbapi_connection: Any, seconds: float) -> None:
        fd = dbapi_connection.fileno()
        with self._lock:
            self._armed[id(dbapi_connection)] = (
                time.monotonic() + seconds,
                fd,
                dbapi_connection,
                _ARMED,
            )
            if self._owner_pid != os.getpid():  # first use in this process (gunicorn forks)
                self._owner_pid = os.getpid()
                threading.Thread(target=self._watch, name="statement-watchdog", daemon=True).start()

    def disarm(self, dbapi_connection: Any) -> None:
        with self._lock:
            self._armed.pop(id(dbapi_connection), None)

    def _watch(self) -> None:
        while True:
            time.sleep(_TICK_SECONDS)
            now = time.monotonic()
            with self._lock:
                expired = [key for key, armed in self._armed.items() if armed[0] <= now]
                for key in expired:
                    _deadline, fd, connection, stage = self._armed.pop(key)
                    if stage == _ARMED and hasattr(connection, "cancel_safe"):
                        self._armed[key] = (now + CANCEL_GRACE_SECONDS, fd, connection, _CANCELLED)
                        self._cancel(key, connection)
                    else:
                        _cut(fd)

    def _cancel(self, key: int, connection: Any) -> None:
        """Ask the server to cancel the connection's statement, not waiting here for it (a
        frozen server never answers the cancel either: the cut after the grace does)."""

        def send() -> None:
            with self._lock:  # the statement may have returned since (a new one must live)
                armed = self._armed.get(key)
                if armed is None or armed[3] != _CANCELLED:
                    return
            with contextlib.suppress(Exception):
                connection.cancel_safe(timeout=CANCEL_GRACE_SECONDS * 5)

        threading.Thread(target=send, name="statement-cancel", daemon=True).start()

    def seconds_for(self, options: Any) -> float:
        """The deadline (seconds from now) of a statement on a connection with `options`."""
        return self._seconds(options)

    def _seconds(self, options: Any) -> float:
        seconds = float(options.get(DEADLINE_OPTION, self.default_seconds))
        deadline_at = options.get(DEADLINE_AT_OPTION)
        if deadline_at is not None:
            seconds = min(seconds, max(0.0, deadline_at - time.monotonic()))
        return seconds

    def install(self, engine: Engine) -> None:
        """Arm and disarm around every statement of `engine`'s connections."""

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, *_: Any) -> None:
            self.arm(cursor.connection, self._seconds(conn.get_execution_options()))

        @event.listens_for(engine, "after_cursor_execute")
        def _after(_conn: Any, cursor: Any, *_: Any) -> None:
            self.disarm(cursor.connection)

        @event.listens_for(engine, "handle_error")
        def _failed(context: Any) -> None:
            dbapi_connection = getattr(context.connection, "connection", None)
            if dbapi_connection is not None and dbapi_connection.dbapi_connection is not None:
                self.disarm(dbapi_connection.dbapi_connection)

        @event.listens_for(engine, "commit")
        def _commit(conn: Any) -> None:
            self.arm(conn.connection.dbapi_connection, self._seconds(conn.get_execution_options()))

        @event.listens_for(engine, "checkin")
        def _checkin(dbapi_connection: Any, _record: Any) -> None:
            if dbapi_connection is not None:
                self.disarm(dbapi_connection)


def _cut(fd: int) -> None:
    # Shut down, not close: the driver still owns the descriptor and closes it itself.
    with contextlib.suppress(OSError):
        duplicate = socket.socket(fileno=os.dup(fd))
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        finally:
            duplicate.close()
