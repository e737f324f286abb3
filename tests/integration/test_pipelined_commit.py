"""A transaction's last statement sent with its COMMIT (database.execute_at_commit): one
round trip on PostgreSQL, and still nothing reported committed that was not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.store.database import Database, execute_at_commit, is_unavailable
from app.store.models import Service


def _service(name: str) -> Any:
    return insert(Service).values(name=name, slug=name, created_at=datetime.now(UTC))


def _renamed(name: str, slug: str) -> Any:
    # An UPDATE returns nothing (a deferred statement must not: nobody reads it).
    return update(Service).where(Service.name == name).values(slug=slug)


def _count(database: Database) -> int:
    with database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(Service)) or 0)


def _slugs(database: Database) -> set[str]:
    with database.reading() as session:
        return set(session.scalars(select(Service.slug)))


def test_the_last_statement_goes_out_with_the_commit(database: Database) -> None:
    in_pipeline: list[bool] = []

    def on_statement(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith(("INSERT", "UPDATE")):
            pgconn = getattr(cursor.connection, "pgconn", None)
            in_pipeline.append(pgconn is not None and bool(pgconn.pipeline_status))

    event.listen(database.engine, "before_cursor_execute", on_statement)
    try:
        with database.transaction(0.5, pipelined_commit=True) as session:
            connection = session.connection()
            connection.execute(_service("first"))
            execute_at_commit(connection, _renamed("first", "last"), {})
    finally:
        event.remove(database.engine, "before_cursor_execute", on_statement)

    # PostgreSQL: the first statement alone, the last in the COMMIT's pipeline; SQLite
    # (in the process, no round trips) runs both at once.
    assert in_pipeline == [False, database.is_postgresql]
    assert _slugs(database) == {"last"}


def test_a_failing_last_statement_fails_the_transaction_and_commits_nothing(
    database: Database,
) -> None:
    with database.transaction() as session:
        session.execute(_service("taken"))

    with (
        pytest.raises(IntegrityError) as raised,
        database.transaction(0.5, pipelined_commit=True) as session,
    ):
        connection = session.connection()
        connection.execute(_service("fresh"))
        execute_at_commit(connection, _renamed("fresh", "taken"), {})  # slugs are unique

    assert not is_unavailable(raised.value)  # a refused write, not a database outage
    assert _count(database) == 1  # "fresh" was rolled back with it
    with database.transaction() as session:  # the pool hands out a usable connection
        session.execute(_service("after"))
    assert _count(database) == 2


def test_nothing_may_follow_a_statement_left_for_the_commit(database: Database) -> None:
    if not database.is_postgresql:
        pytest.skip("SQLite runs the statement at once: there is no later to get wrong")
    with (
        pytest.raises(RuntimeError, match="after one left for the COMMIT"),
        database.transaction(0.5, pipelined_commit=True) as session,
    ):
        connection = session.connection()
        execute_at_commit(connection, _renamed("none", "last"), {})
        connection.execute(_service("too late"))

    assert _count(database) == 0


def test_without_a_pipelined_commit_the_statement_runs_at_once(database: Database) -> None:
    with database.transaction() as session:
        connection = session.connection()
        connection.execute(_service("now"))
        execute_at_commit(connection, _renamed("now", "at once"), {})
        assert session.scalar(select(Service.slug)) == "at once"
