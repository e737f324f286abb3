"""Deliveries during a database outage: keep them on disk, apply them when it returns."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.domain.errors import BridgeError, DeliveryNotKept
from app.services.delivery_records import InboundDelivery, record_failed_delivery
from app.services.ingest import ingest_delivery
from app.store.database import Database, is_unavailable
from app.store.encryption import SecretBox
from app.store.models import Delivery
from app.store.spool import Spool, SpoolFileUnreadable, SpoolWriteFailed

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


@dataclass(frozen=True)
class DrainReport:
    applied: int
    already_applied: int
    remaining: int
    stopped_by_outage: bool
    quarantined: int = 0


def _answered_when_spooled(_code: str | None) -> int:
    return 202


def drain_spool(
    database: Database, secrets: SecretBox, spool: Spool, max_body_bytes: int
) -> DrainReport:
    """Apply spooled deliveries oldest first, one transaction each, until none or an outage.

    A file is removed only after its transaction committed; the delivery's unique spool id
    makes a file applied but not removed (a crash in between) a no-op the next time.
    """
    applied = already = quarantined = 0
    with spool.exclusive() as is_ours:
        if not is_ours:
            return DrainReport(0, 0, len(spool.pending()), stopped_by_outage=False)
        spool.remove_stale_temporaries()
        for path in spool.pending():
            try:
                inbound = _inbound(spool, path)
            except (SpoolFileUnreadable, KeyError, TypeError, ValueError) as error:
                # Truncated or corrupt (it was never answered 202 if the write failed, but a
                # disk can still lose it): set it aside, so it blocks nobody behind it.
                moved = spool.quarantine(path)
                quarantined += 1
                log.error("spool file %s is unreadable, moved to %s: %s", path.name, moved, error)
                continue
            spool_id = inbound.spool_id
            try:
                with database.transaction() as session:
                    if session.scalar(select(Delivery.id).where(Delivery.spool_id == spool_id)):
                        already += 1
                    else:
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
                # Unknown integration: answered 404 had the database been up; nothing to keep.
                log.warning("spooled delivery %s dropped: %s", spool_id, error.code)
            except Exception as error:
                if is_unavailable(error):
                    log.warning("spool drain paused: the database is still unavailable")
                    return DrainReport(applied, already, len(spool.pending()), True, quarantined)
                # A bug must not block every delivery behind it: keep a failed record.
                log.exception("spooled delivery %s failed to apply", spool_id)
                with database.transaction() as session:
                    record_failed_delivery(session, inbound, 202, type(error).__name__)
            spool.remove(path)
    return DrainReport(applied, already, len(spool.pending()), False, quarantined)


def _inbound(spool: Spool, path: Path) -> InboundDelivery:
    record, body = spool.read(path)
    spool_id = str(record.pop("spool_id"))
    record["received_at"] = datetime.fromisoformat(record["received_at"])
    return InboundDelivery(body=body, spool_id=spool_id, **record)
