"""Deliveries during a database outage: keep them on disk, apply them when it returns."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.domain.errors import BridgeError, DeliveryNotKept
from app.services.delivery_records import InboundDelivery, record_failed_delivery
from app.services.ingest import ingest_delivery
from app.store.database import Database, is_busy, is_unavailable
from app.store.encryption import SecretBox
from app.store.models import Delivery
from app.store.spool_files import Spool, SpoolFileUnreadable, SpoolWriteFailed

log = logging.getLogger(__name__)


def spool_delivery(spool: Spool, inbound: InboundDelivery) -> str:
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

    @property
    def rate(self) -> float:
        """Deliveries applied (or found applied) per second of draining."""
        done = self.applied + self.already_applied
        return done / self.seconds if self.seconds > 0 else 0.0


def _answered_when_spooled(_code: str | None) -> int:
    return 202


@dataclass
class _Tally:
    applied: int = 0
    already: int = 0
    quarantined: int = 0
    transactions: int = 0


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

    Files are removed only after their batch committed; the delivery's unique spool id
    makes a file applied but not removed (a crash in between) a no-op the next time. A
    batch that fails for any other reason than the database (a bug, one bad delivery) is
    rolled back whole and applied again one delivery per transaction, so one bad file
    blocks nobody and nothing is applied twice.
    """
    tally = _Tally()
    started = time.monotonic()
    with spool.exclusive() as is_ours:
        if not is_ours:
            return DrainReport(0, 0, len(spool.pending()), stopped_by_outage=False)
        spool.remove_stale_temporaries()
        pending = spool.pending()
        for first in range(0, len(pending), max(1, batch_size)):
            batch = _readable(spool, pending[first : first + max(1, batch_size)], tally)
            while batch:
                try:
                    done = _apply_batch_or_each(database, secrets, batch, max_body_bytes, tally)
                except _Paused:
                    log.warning("spool drain paused: the database is unavailable or busy")
                    return _report(tally, spool, True, started)
                spool.remove_many([path for path, _inbound in batch[:done]])
                batch = batch[done:]
    return _report(tally, spool, False, started)


def _apply_batch_or_each(
    database: Database,
    secrets: SecretBox,
    batch: list[tuple[Path, InboundDelivery]],
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
        len(spool.pending()),
        paused,
        tally.quarantined,
        seconds=time.monotonic() - started,
        transactions=tally.transactions,
    )


def _readable(spool: Spool, paths: list[Path], tally: _Tally) -> list[tuple[Path, InboundDelivery]]:
    """The batch's files that read back whole; the others are quarantined."""
    readable = []
    for path in paths:
        try:
            readable.append((path, _inbound(spool, path)))
        except (SpoolFileUnreadable, KeyError, TypeError, ValueError) as error:
            # Truncated or corrupt (it was never answered 202 if the write failed, but a
            # disk can still lose it): set it aside, so it blocks nobody behind it.
            moved = spool.quarantine(path)
            tally.quarantined += 1
            log.error("spool file %s is unreadable, moved to %s: %s", path.name, moved, error)
    return readable


def _apply_batch(
    database: Database,
    secrets: SecretBox,
    batch: list[tuple[Path, InboundDelivery]],
    max_body_bytes: int,
    tally: _Tally,
    last: bool = False,
) -> int:
    """One transaction for the batch, or for as much of it as BATCH_MAX_SECONDS allow:
    how many deliveries it took. `last`: a batch of one, after a failed batch: a
    delivery that fails on its own is recorded as failed (never retried for ever)."""
    applied = already = taken = 0
    started = time.monotonic()
    try:
        with database.transaction() as session:
            ids = [inbound.spool_id for _path, inbound in batch]
            done = set(session.scalars(select(Delivery.spool_id).where(Delivery.spool_id.in_(ids))))
            for _path, inbound in batch:
                if taken and time.monotonic() - started > BATCH_MAX_SECONDS:
                    break  # commit what is done: live deliveries wait on these locks
                taken += 1
                if inbound.spool_id in done:
                    already += 1
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
        _path, inbound = batch[0]
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
    tally.transactions += 1
    return taken


def _inbound(spool: Spool, path: Path) -> InboundDelivery:
    record, body = spool.read(path)
    spool_id = str(record.pop("spool_id"))
    record["received_at"] = datetime.fromisoformat(record["received_at"])
    return InboundDelivery(body=body, spool_id=spool_id, **record)
