"""Periodic jobs run once per interval across every jobs process: the claim of a slot.

A job's intervals are numbered from the epoch (`slot_of`); running one means inserting
its (job, slot) row first. The unique index makes the insert the lease: two processes
that try at once (they do: the scheduler fires them all at the start of the slot) get
one row, and only its inserter runs the job. A slot is over when its interval is, so a
process that dies holding one blocks nothing: the next interval is claimed afresh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.store.job_models import JobRun


@dataclass(frozen=True)
class RunView:
    job: str
    slot: int
    node: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None


def slot_of(at: datetime, interval_seconds: float) -> int:
    """The number of the interval `at` falls in, counted from the epoch."""
    return math.floor(at.timestamp() / interval_seconds)


def claim(
    session: Session, job: str, interval_seconds: int, node: str, now: datetime
) -> int | None:
    """Claim `job`'s slot of `now` for `node`: the run's id, or None if it was taken."""
    values = {
        "job": job,
        "slot": slot_of(now, interval_seconds),
        "interval_seconds": interval_seconds,
        "node": node[:64],
        "started_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(JobRun)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["job", "slot"])
        .returning(JobRun.id)
    )
    run_id: int | None = session.execute(statement).scalar_one_or_none()
    return run_id


def finish(session: Session, run_id: int, now: datetime, outcome: str) -> None:
    session.execute(
        update(JobRun).where(JobRun.id == run_id).values(finished_at=now, outcome=outcome)
    )


def runs(session: Session, job: str | None = None) -> list[RunView]:
    """Every recorded run (of `job`), oldest first."""
    query = select(JobRun).order_by(JobRun.job, JobRun.slot)
    if job is not None:
        query = query.where(JobRun.job == job)
    return [
        RunView(r.job, r.slot, r.node, r.started_at, r.finished_at, r.outcome)
        for r in session.scalars(query)
    ]


def prune(session: Session, cutoff: datetime) -> int:
    """Forget runs started before `cutoff` (the prune job keeps them as long as deliveries)."""
    result = session.execute(delete(JobRun).where(JobRun.started_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
