"""A client-side deadline for PostgreSQL statements: a database that stops answering.

PostgreSQL's own statement_timeout only helps while the server runs: a frozen server, a
stalled proxy or a half-dead link never answers, and libpq waits for ever (TCP keepalives
and tcp_user_timeout catch only some of these, and only after tens of seconds). So each
statement is given a deadline; one thread per process shuts down the socket of any
connection whose statement is still unanswered past it. The driver then fails the
statement as a lost connection, the pool discards the connection, and the webhook sends
the delivery to the spool.
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
# How often the watchdog looks: the deadlines it enforces are this much late at most.
_TICK_SECONDS = 0.05


class StatementWatchdog:
    """Armed before each statement and COMMIT, disarmed when it returns."""

    def __init__(self, default_seconds: float) -> None:
        self.default_seconds = default_seconds
        self._lock = threading.Lock()
        self._armed: dict[int, tuple[float, int]] = {}
        self._owner_pid: int | None = None

    def arm(self, dbapi_connection: Any, seconds: float) -> None:
        fd = dbapi_connection.fileno()
        with self._lock:
            self._armed[id(dbapi_connection)] = (time.monotonic() + seconds, fd)
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
                expired = [key for key, (deadline, _fd) in self._armed.items() if deadline <= now]
                for key in expired:
                    _deadline, fd = self._armed.pop(key)
                    _cut(fd)

    def install(self, engine: Engine) -> None:
        """Arm and disarm around every statement of `engine`'s connections."""

        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, *_: Any) -> None:
            seconds = conn.get_execution_options().get(DEADLINE_OPTION, self.default_seconds)
            self.arm(cursor.connection, seconds)

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
            seconds = conn.get_execution_options().get(DEADLINE_OPTION, self.default_seconds)
            self.arm(conn.connection.dbapi_connection, seconds)

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
