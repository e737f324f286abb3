"""Group commit: the webhook deliveries of one process that wait for SQLite's write lock
share one write transaction, each in a savepoint of its own.

SQLite has one writer. With one transaction per delivery, every delivery queues for the
write lock (polled every 2 ms across processes, app/store/database.py::_begin_within)
and pays BEGIN IMMEDIATE and COMMIT; the store-only ceiling does a single INSERT per
transaction and the bridge several statements, so the lock was the ingest limit
(docs/benchmarks.md, issue 17). Here the first delivery to arrive leads: it takes every
delivery queued in its process by then (at most MAX_BATCH), applies each in a SAVEPOINT,
commits once and hands the lead to the next one queued. No delivery is held back to fill
a batch: a batch is what arrived while the previous one held the lock.

What each caller is told:
- its own result, after the shared COMMIT succeeded: nothing is answered before commit;
- its own exception, when its work raised (its savepoint is rolled back; the others in
  the batch are unaffected);
- when the batch itself failed (BEGIN, COMMIT, or a broken transaction): a busy or
  unreachable database is raised to every caller (the webhook spools, as it would for
  its own transaction); anything else, and the caller's work runs again alone in a
  transaction of its own, so one delivery's failure never costs another its answer.

On PostgreSQL (row locks, no single writer) a batch would only hold incident locks
longer: `enabled` is False there and every call is its own transaction, as before. Every
transaction here is a `pipelined_commit` one: a work's last statement may go out with the
COMMIT (database.execute_at_commit); in a batch it is sent at the end of its savepoint.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from app.store.database import Database, is_busy, is_unavailable, run_at_commit_now

T = TypeVar("T")
# Deliveries in one transaction at most: the lock is held while all of them apply.
MAX_BATCH = 16


@dataclass(eq=False)
class _Waiting:
    """One caller's work, queued for the next batch, and what became of it."""

    work: Callable[[Session], Any]
    deadline_at: float | None
    done: threading.Event = field(default_factory=threading.Event)
    must_lead: bool = False
    is_settled: bool = False
    value: Any = None
    error: BaseException | None = None
    batch_error: BaseException | None = None


class GroupCommit:
    """One per process and database: runs units of work, batched while SQLite is busy."""

    def __init__(self, database: Database, enabled: bool | None = None) -> None:
        self.database = database
        self.enabled = (not database.is_postgresql) if enabled is None else enabled
        self._lock = threading.Lock()
        self._queue: list[_Waiting] = []
        self._is_leading = False

    def run(
        self,
        work: Callable[[Session], T],
        statement_deadline_seconds: float | None = None,
        deadline_at: float | None = None,
    ) -> T:
        """`work(session)` applied and committed (with others'), or its exception raised.

        The deadlines are those of Database.transaction; a batch keeps the earliest."""
        if not self.enabled:
            return self._alone(work, statement_deadline_seconds, deadline_at)
        waiting = _Waiting(work, deadline_at)
        with self._lock:
            self._queue.append(waiting)
            leads = not self._is_leading
            self._is_leading = True
        if not leads:
            waiting.done.wait()
        if leads or waiting.must_lead:
            self._lead(statement_deadline_seconds)
        if waiting.error is not None:
            raise waiting.error
        if waiting.is_settled:
            result: T = waiting.value
            return result
        failed = waiting.batch_error
        if failed is not None and (is_busy(failed) or is_unavailable(failed)):
            raise failed
        # The batch failed for a reason of its own; this work did not: apply it alone.
        return self._alone(work, statement_deadline_seconds, deadline_at)

    def _alone(
        self,
        work: Callable[[Session], T],
        statement_deadline_seconds: float | None,
        deadline_at: float | None,
    ) -> T:
        with self.database.transaction(
            statement_deadline_seconds, deadline_at, pipelined_commit=True
        ) as session:
            return work(session)

    def _lead(self, statement_deadline_seconds: float | None) -> None:
        with self._lock:
            batch = self._queue[:MAX_BATCH]
            del self._queue[:MAX_BATCH]
        try:
            self._commit(batch, statement_deadline_seconds)
        finally:
            with self._lock:
                if self._queue:
                    following = self._queue[0]
                    following.must_lead = True
                    following.done.set()
                else:
                    self._is_leading = False
            for waiting in batch:
                waiting.done.set()

    def _commit(self, batch: list[_Waiting], statement_deadline_seconds: float | None) -> None:
        deadlines = [w.deadline_at for w in batch if w.deadline_at is not None]
        deadline_at = min(deadlines) if deadlines else None
        if len(batch) == 1:
            # Alone: its own transaction, no savepoint (two statements fewer), and every
            # error, the transaction's too, is its own.
            (waiting,) = batch
            try:
                waiting.value = self._alone(waiting.work, statement_deadline_seconds, deadline_at)
            except Exception as error:
                waiting.error = error
            else:
                waiting.is_settled = True
            return
        applied: list[_Waiting] = []
        try:
            with self.database.transaction(
                statement_deadline_seconds, deadline_at, pipelined_commit=True
            ) as session:
                for waiting in batch:
                    try:
                        with session.begin_nested():
                            waiting.value = waiting.work(session)
                            # Its statements left for the COMMIT belong in its savepoint.
                            run_at_commit_now(session.connection())
                    except Exception as error:
                        waiting.error = error
                    else:
                        applied.append(waiting)
        except BaseException as error:
            # Nothing of this batch was committed: no caller may be told otherwise. A
            # caller's own error may have been the broken transaction's doing, so it is
            # dropped too: alone, its work fails again only if the failure is its own.
            for waiting in batch:
                waiting.value = None
                waiting.error = None
                waiting.batch_error = error
            if not isinstance(error, Exception):
                raise
            return
        for waiting in applied:
            waiting.is_settled = True
