"""Group commit (app/store/group_commit.py): concurrent units of work share a transaction,
each in a savepoint, and every caller learns only what was committed."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.store.database import Database, is_busy
from app.store.group_commit import GroupCommit
from app.store.models import Service


def _add_service(name: str, seen: dict[str, Session] | None = None) -> Callable[[Session], str]:
    def work(session: Session) -> str:
        if seen is not None:
            seen[name] = session
        session.execute(insert(Service).values(name=name, slug=name, created_at=datetime.now(UTC)))
        return f"added {name}"

    return work


def _names(database: Database) -> set[str]:
    with database.reading() as session:
        return set(session.scalars(select(Service.name)))


def _run_while_first_holds(
    committer: GroupCommit, first: Callable[[Session], Any], others: dict[str, Any]
) -> dict[str, Any]:
    """Run `first` (its result under "a"), and while it is inside its transaction start
    every one of `others`: they queue behind it and form the next batch. Returns each
    caller's result or error."""
    entered, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def holding(session: Session) -> Any:
        entered.set()
        assert release.wait(10)
        return first(session)

    def call(name: str, work: Callable[[Session], Any]) -> None:
        try:
            results[name] = committer.run(work, 5.0, time.monotonic() + 10)
        except Exception as error:
            results[name] = error

    threads = [threading.Thread(target=call, args=("a", holding))]
    threads[0].start()
    assert entered.wait(10)
    for name, work in others.items():
        threads.append(threading.Thread(target=call, args=(name, work)))
        threads[-1].start()
    deadline = time.monotonic() + 10
    while len(committer._queue) < len(others) and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    for thread in threads:
        thread.join(10)
    return results


def test_deliveries_waiting_together_share_one_transaction(database: Database) -> None:
    committer = GroupCommit(database, enabled=True)
    seen: dict[str, Session] = {}
    others = {name: _add_service(name, seen) for name in ("b", "c", "d")}

    results = _run_while_first_holds(committer, _add_service("a", seen), others)

    assert results == {name: f"added {name}" for name in ("a", "b", "c", "d")}
    assert seen["b"] is seen["c"] is seen["d"]  # one batch, one session
    assert seen["a"] is not seen["b"]
    assert _names(database) == {"a", "b", "c", "d"}


def test_one_failing_delivery_leaves_the_others_of_its_batch_committed(
    database: Database,
) -> None:
    committer = GroupCommit(database, enabled=True)

    def failing(session: Session) -> str:
        _add_service("doomed")(session)
        raise ValueError("this one is broken")

    results = _run_while_first_holds(
        committer, _add_service("a"), {"b": _add_service("b"), "x": failing, "c": _add_service("c")}
    )

    assert isinstance(results["x"], ValueError)
    assert results["b"] == "added b" and results["c"] == "added c"
    assert _names(database) == {"a", "b", "c"}  # the failed one's write was rolled back


def test_a_batch_whose_commit_fails_applies_each_delivery_alone_exactly_once(
    database: Database,
) -> None:
    committer = GroupCommit(database, enabled=True)
    commits = {"count": 0}

    def fail_the_second_commit(connection: Any) -> None:
        commits["count"] += 1
        if commits["count"] == 2:  # the batch of b, c, d (the first is a's own)
            raise RuntimeError("commit failed")

    event.listen(database.engine, "commit", fail_the_second_commit)
    try:
        others = {name: _add_service(name) for name in ("b", "c", "d")}
        results = _run_while_first_holds(committer, _add_service("a"), others)
    finally:
        event.remove(database.engine, "commit", fail_the_second_commit)

    assert results == {name: f"added {name}" for name in ("a", "b", "c", "d")}
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Service)) == 4
    assert commits["count"] == 5  # a; the failed batch; b, c and d alone


def test_a_busy_database_is_reported_to_the_caller_not_retried(
    database: Database, database_url: str
) -> None:
    if database.is_postgresql:
        pytest.skip("SQLite's write lock: PostgreSQL has no single writer to hold")
    held = sqlite3.connect(str(make_url(database_url).database), isolation_level=None)
    held.execute("BEGIN IMMEDIATE")
    committer = GroupCommit(database, enabled=True)
    try:
        with pytest.raises(Exception) as raised:
            committer.run(_add_service("late"), 0.1, time.monotonic() + 0.1)
    finally:
        held.execute("ROLLBACK")
        held.close()

    assert is_busy(raised.value)
    assert _names(database) == set()


def test_group_commit_is_for_sqlite_only_by_default(database: Database) -> None:
    committer = GroupCommit(database)

    assert committer.enabled is not database.is_postgresql
    assert committer.run(_add_service("solo")) == "added solo"
    assert _names(database) == {"solo"}
