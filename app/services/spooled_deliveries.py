"""Deliveries during a database outage: keep them on disk, apply them when it returns."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain.errors import BridgeError, DeliveryNotKept
from app.services.delivery_records import (
    InboundDelivery,
    record_failed_delivery,
    record_refused_delivery,
)
from app.services.ingest import ingest_delivery
from app.store.database import Database, is_busy, is_unavailable
from app.store.encryption import SecretBox
from app.store.models import Delivery
from app.store.spool_files import Spool, SpoolFileUnreadable, SpoolWriteFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpooledRefusal:
    """A delivery refused before it was spooled (past its integration's rate limit): the
    drain stores it as refused, with this answer, and never applies it."""

    code: str
    message: str
    http_status: int
    findings: dict[str, Any]


def spool_delivery(
    spool: Spool, inbound: InboundDelivery, refused: SpooledRefusal | None = None
) -> str:
    """Keep a delivery on local disk (fsync'd); returns its spool id.

    Raises DeliveryNotKept when the spool cannot keep it (disk full, read-only): the
    sender must then be told to retry, never that the delivery was accepted.
    """
    record: dict[str, Any] = {
        field.name: getattr(inbound, field.name)
        for field in dataclasses.fields(inbound)
        if field.name not in {"body", "spool_id"}
    }
    record["received_at"] = inbound.received_at.isoformat()
    if refused is not None:
        record["refused"] = dataclasses.asdict(refused)
    try:
        return spool.put(record, inbound.body)
    except SpoolWriteFailed as error:
        log.error("delivery not kept: the database is unavailable and %s", error.strerror)
        raise DeliveryNotKept(
            "The database is unavailable and the bridge could not keep the delivery on its "
            "local disk either. Nothing was kept: send it again."
        ) from error


# Deliveries applied in one transaction: one COMMIT (one fsync) for all of them, but the
# batch holds its incidents' row locks (on SQLite, the write lock) until it commits, and
# live deliveries of the same issues wait behind it: small enough to stay well inside
# their deadline (a delivery costs a few milliseconds).
DRAIN_BATCH_SIZE = 50
# ...and a batch commits after this long even if it is not full, whatever the host's
# speed: the lock hold stays well inside a live delivery's 500 ms statement deadline.
BATCH_MAX_SECONDS = 0.15


@dataclass(frozen=True)
class DrainReport:
    applied: int
    already_applied: int
    remaining: int
    stopped_by_outage: bool
    quarantined: int = 0
    # Seconds spent applying (reading files, transactions, removing files).
    seconds: float = 0.0
    # Transactions the batches needed (a failed batch is applied one by one).
    transactions: int = 0
    # The periodic drain held off: deliveries were still being spooled (app/jobs/spool_drain.py).
    held: bool = False
    # Stored as refused, as they were answered (rate-limited before they were spooled).
    refused: int = 0

    @property
    def rate(self) -> float:
        """Deliveries applied (or found applied, or stored refused) per second of draining."""
        done = self.applied + self.already_applied + self.refused
        return done / self.seconds if self.seconds > 0 else 0.0


def _answered_when_spooled(_code: str | None) -> int:
    return 202


@dataclass
class _Tally:
    applied: int = 0
    already: int = 0
    quarantined: int = 0
    transactions: int = 0
    refused: int = 0


@dataclass(frozen=True)
class _Entry:
    """One spooled delivery; its file is removed once its last delivery is done."""

    path: Path
    inbound: InboundDelivery
    refused: SpooledRefusal | None
    is_last_of_file: bool


class _Paused(Exception):
    """The database is unreachable or too busy now: keep the files, try again later."""


def drain_spool(
    database: Database,
    secrets: SecretBox,
    spool: Spool,
    max_body_bytes: int,
    batch_size: int = DRAIN_BATCH_SIZE,
) -> DrainReport:
    """Apply spooled deliveries oldest first, `batch_size` per transaction, until none or
    an outage.

    Files are removed only after their batch committed (a file of several deliveries once
    the last of them did); the delivery's unique spool id makes one applied but not
    removed (a crash in between) a no-op the next time. A batch that fails for any other
    reason than the database (a bug, one bad delivery) is rolled back whole and applied
    again one delivery per transaction, so one bad file blocks nobody and nothing is
    applied twice.
    """
    tally = _Tally()
    started = time.monotonic()
    with spool.exclusive() as is_ours:
        if not is_ours:
            return DrainReport(0, 0, spool.pending_deliveries(), stopped_by_outage=False)
        spool.remove_stale_temporaries()
        entries = _entries(spool, spool.pending(), tally)
        while batch := list(itertools.islice(entries, max(1, batch_size))):
            while batch:
                try:
                    done = _apply_batch_or_each(database, secrets, batch, max_body_bytes, tally)
                except _Paused:
                    log.warning("spool drain paused: the database is unavailable or busy")
                    return _report(tally, spool, True, started)
                spool.remove_many([entry.path for entry in batch[:done] if entry.is_last_of_file])
                batch = batch[done:]
    return _report(tally, spool, False, started)


def _apply_batch_or_each(
    database: Database,
    secrets: SecretBox,
    batch: list[_Entry],
    max_body_bytes: int,
    tally: _Tally,
) -> int:
    """Apply the batch's first deliveries in one transaction; how many it took."""
    try:
        return _apply_batch(database, secrets, batch, max_body_bytes, tally)
    except _Paused:
        raise
    except Exception:
        log.exception("a spooled batch failed; applying it one delivery at a time")
        for one in batch:
            _apply_batch(database, secrets, [one], max_body_bytes, tally, last=True)
        return len(batch)


def _report(tally: _Tally, spool: Spool, paused: bool, started: float) -> DrainReport:
    return DrainReport(
        tally.applied,
        tally.already,
        spool.pending_deliveries(),
        paused,
        tally.quarantined,
        seconds=time.monotonic() - started,
        transactions=tally.transactions,
        refused=tally.refused,
    )


def _entries(spool: Spool, paths: list[Path], tally: _Tally) -> Iterator[_Entry]:
    """The deliveries of the files, in order; files that do not read back whole are
    quarantined."""
    for path in paths:
        try:
            kept = [_inbound(record, body) for record, body in spool.read_all(path)]
        except (SpoolFileUnreadable, KeyError, TypeError, ValueError) as error:
            # Truncated or corrupt (it was never answered 202 if the write failed, but a
            # disk can still lose it): set it aside, so it blocks nobody behind it.
            moved = spool.quarantine(path)
            tally.quarantined += 1
            log.error("spool file %s is unreadable, moved to %s: %s", path.name, moved, error)
            continue
        for index, (inbound, refused) in enumerate(kept):
            yield _Entry(path, inbound, refused, index == len(kept) - 1)


def _apply_batch(
    database: Database,
    secrets: SecretBox,
    batch: list[_Entry],
    max_body_bytes: int,
    tally: _Tally,
    last: bool = False,
) -> int:
    """One transaction for the batch, or for as much of it as BATCH_MAX_SECONDS allow:
    how many deliveries it took. `last`: a batch of one, after a failed batch: a
    delivery that fails on its own is recorded as failed (never retried for ever)."""
    applied = already = refused = taken = 0
    started = time.monotonic()
    try:
        with database.transaction() as session:
            ids = [entry.inbound.spool_id for entry in batch]
            done = set(session.scalars(select(Delivery.spool_id).where(Delivery.spool_id.in_(ids))))
            for entry in batch:
                if taken and time.monotonic() - started > BATCH_MAX_SECONDS:
                    break  # commit what is done: live deliveries wait on these locks
                taken += 1
                inbound = entry.inbound
                if inbound.spool_id in done:
                    already += 1
                    continue
                if entry.refused is not None:
                    # Answered as refused when it was spooled: stored so, never applied.
                    if _record_refused(session, inbound, entry.refused):
                        refused += 1
                    continue
                try:
                    # The sender was answered 202 when the delivery was spooled.
                    ingest_delivery(
                        session,
                        inbound,
                        secrets,
                        max_body_bytes,
                        answer_status=_answered_when_spooled,
                    )
                    applied += 1
                except BridgeError as error:
                    # Unknown integration: answered 404 had the database been up; nothing
                    # was written for it, so the batch goes on.
                    log.warning("spooled delivery %s dropped: %s", inbound.spool_id, error.code)
    except Exception as error:
        if is_unavailable(error) or is_busy(error):
            raise _Paused from error
        if not last:
            raise
        inbound = batch[0].inbound
        # A bug must not block every delivery behind it: keep a failed record.
        log.exception("spooled delivery %s failed to apply", inbound.spool_id)
        try:
            with database.transaction() as session:
                record_failed_delivery(session, inbound, 202, type(error).__name__)
        except Exception as again:
            if is_unavailable(again) or is_busy(again):
                raise _Paused from again
            raise
        tally.transactions += 1
        return 1
    tally.applied += applied
    tally.already += already
    tally.refused += refused
    tally.transactions += 1
    return taken


def _record_refused(session: Session, inbound: InboundDelivery, refusal: SpooledRefusal) -> bool:
    recorded = record_refused_delivery(
        session, inbound, refusal.code, refusal.message, refusal.http_status, refusal.findings
    )
    if recorded is None:
        log.warning(
            "spooled refused delivery %s dropped: its integration is gone", inbound.spool_id
        )
    return recorded is not None


def _inbound(
    record: dict[str, Any], body: bytes | None
) -> tuple[InboundDelivery, SpooledRefusal | None]:
    spool_id = str(record.pop("spool_id"))
    refused = record.pop("refused", None)
    record["received_at"] = datetime.fromisoformat(record["received_at"])
    inbound = InboundDelivery(body=body, spool_id=spool_id, **record)
    return inbound, SpooledRefusal(**refused) if refused is not None else None
