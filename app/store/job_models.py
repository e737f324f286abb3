"""The periodic jobs' run record (app/jobs/periodic.py): one row per job and interval.

Kept apart from models.py (which imports it) so that the cluster's bookkeeping stays out
of the incident tables; it shares their Base, naming convention and column types.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models import Base


class JobRun(Base):
    """A periodic job's run in one interval, claimed by the jobs process that inserted it.

    `slot` numbers the job's intervals since the epoch (start // interval); the unique
    (job, slot) is the lease: of the processes that try at once, one inserts, the rest find
    the slot taken. A slot ends with its interval, so a crashed holder blocks nothing.
    """

    __tablename__ = "job_runs"
    __table_args__ = (
        Index("uq_job_runs_job_slot", "job", "slot", unique=True),
        Index("ix_job_runs_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    slot: Mapped[int] = mapped_column(BigInteger)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(20))  # done | failed
