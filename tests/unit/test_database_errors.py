"""Which database errors mean "down" (trip the outage gate) and which "busy" (spool one)."""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc

from app.store.database import is_busy, is_unavailable


class _Driver(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__("driver error")
        self.sqlstate = sqlstate


def _operational(sqlstate: str | None, invalidated: bool = False) -> exc.OperationalError:
    return exc.OperationalError(
        "SELECT 1", {}, _Driver(sqlstate), connection_invalidated=invalidated
    )


def test_a_cancelled_statement_or_a_lock_not_had_is_busy_not_an_outage() -> None:
    for sqlstate in ("57014", "55P03", "40P01"):
        error = _operational(sqlstate)
        assert is_busy(error) is True, sqlstate
        assert is_unavailable(error) is False, sqlstate


def test_a_lost_connection_is_an_outage_whatever_the_code() -> None:
    assert is_unavailable(_operational(None)) is True  # e.g. "connection refused"
    assert is_unavailable(_operational("57014", invalidated=True)) is True  # socket cut
    assert is_busy(_operational("57014", invalidated=True)) is False
    assert is_unavailable(exc.TimeoutError()) is True  # the pool gave no connection
    assert is_busy(exc.TimeoutError()) is False


def test_other_errors_are_neither() -> None:
    integrity = exc.IntegrityError("INSERT", {}, _Driver("23505"))
    assert (is_busy(integrity), is_unavailable(integrity)) == (False, False)
    assert (is_busy(ValueError()), is_unavailable(ValueError())) == (False, False)


def test_sqlites_busy_write_lock_is_busy_not_an_outage() -> None:
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = 5  # type: ignore[attr-defined]  # SQLITE_BUSY
    assert is_busy(locked) is True
    wrapped = exc.OperationalError("BEGIN IMMEDIATE", {}, locked)
    assert (is_busy(wrapped), is_unavailable(wrapped)) == (True, False)
    broken = sqlite3.OperationalError("disk I/O error")
    broken.sqlite_errorcode = 10  # type: ignore[attr-defined]  # SQLITE_IOERR
    assert is_busy(broken) is False
