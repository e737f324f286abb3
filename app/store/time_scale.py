"""How long an escalation "minute" lasts, carried by the database connection.

Escalation plans are written in two processes (a gunicorn worker starting a run with the
incident change, the jobs process firing its steps) and deep inside the outbox writer,
which gets only a connection. Tests of the real server shorten the minute
(BRIDGE_ESCALATION_MINUTE_SECONDS) so that a step's delay can be waited for; putting it in
the connection's info when the pool opens it reaches every planner without threading a
setting through ingest. Production leaves it at 60 s.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, event

_KEY = "bridge_escalation_minute_seconds"
ONE_MINUTE = timedelta(minutes=1)


def use_minute(engine: Engine, seconds: float) -> None:
    """Every connection the engine opens from now on carries the minute's length."""
    if seconds == ONE_MINUTE.total_seconds():
        return

    @event.listens_for(engine, "connect")
    def _remember(_dbapi_connection: Any, record: Any) -> None:
        record.info[_KEY] = seconds


def minute_of(connection: Connection) -> timedelta:
    return timedelta(seconds=connection.info.get(_KEY, ONE_MINUTE.total_seconds()))
