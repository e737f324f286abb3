"""The record every delivery leaves: its columns as received, and what reading it taught."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.domain.body_record import PREFIX_BYTES, body_record
from app.domain.errors import BridgeError
from app.store import receiver_rows as rows
from app.store.receiver_rows import IncidentChange, IncidentRow


@dataclass(frozen=True)
class InboundDelivery:
    """An HTTP request as the web layer saw it; nothing in here is trusted yet."""

    integration_id: str | None
    body: bytes | None
    received_at: datetime
    content_length: int | None = None
    content_type: str | None = None
    request_id: str | None = None
    hook_resource: str | None = None
    hook_timestamp: str | None = None
    signature: str | None = None
    user_agent: str | None = None
    # The peer's address, for the limit on unknown integration ids (behind a proxy: its).
    client_address: str | None = None
    is_too_large: bool = False
    # Sent without a Content-Length (chunked) and cut off at the limit: content_length is
    # then only how much was read, and the real size is not known.
    size_unknown: bool = False
    # A replay re-applies a stored delivery at a person's request: authenticated by them,
    # not by a signature, and applied even though its Request-ID was seen before.
    replay_of_id: int | None = None
    replayed_by: str | None = None
    # Set when the delivery was kept in the local spool during a database outage.
    spool_id: str | None = None


@dataclass(frozen=True)
class RecordedDelivery:
    """The stored record of a delivery (every delivery is stored, refused ones too)."""

    id: int
    integration_id: str
    received_at: datetime


# What the sender is (or would have been) answered, from the error code of the refusal if
# there is one (None: accepted): the web layer's one table (app/web/errors.py). Without it
# (a test, a tool) the record says 0, "not answered".
AnswerStatus = Callable[[str | None], int]


def full_body(inbound: InboundDelivery) -> dict[str, Any]:
    """An applied delivery keeps its whole body (the record was begun with a prefix)."""
    if inbound.body is None or len(inbound.body) <= PREFIX_BYTES:
        return {}
    return {"body": inbound.body, "body_truncated": False}


def signed_body_digest(findings: Findings, inbound: InboundDelivery) -> str | None:
    """The SHA-256 of a body the integration's secret signed: the part of a delivery an
    eavesdropper cannot change, so the part a captured delivery is recognised by."""
    if findings.signature_outcome not in _SIGNED or inbound.body is None:
        return None
    return hashlib.sha256(inbound.body).hexdigest()


_SIGNED = frozenset({"valid", "valid_previous_secret"})


def not_answered(_code: str | None) -> int:
    return 0


def refusal_columns(error: BridgeError, http_status: int) -> dict[str, Any]:
    return refused_columns(error.code, error.message, http_status)


def refused_columns(code: str, message: str, http_status: int) -> dict[str, Any]:
    """A refused delivery's decision columns, from its error code and message."""
    return {
        "decision": "refused",
        "error_code": code,
        "reason": message,
        "http_status": http_status,
    }


@dataclass
class Findings:
    """What was learnt about a delivery, stored on its record whatever became of it."""

    signature_outcome: str = "not_checked"
    format: str | None = None
    resource: str | None = None
    action: str | None = None
    dedup_key: str | None = None

    def columns(self) -> dict[str, Any]:
        return {
            "signature_outcome": self.signature_outcome,
            "format": self.format,
            "resource": self.resource,
            "action": self.action,
            "dedup_key": self.dedup_key,
        }


def record_failed_delivery(
    session: Session, inbound: InboundDelivery, http_status: int, reason: str
) -> RecordedDelivery | None:
    """Keep a delivery whose processing crashed, so nothing is lost without a trace."""
    if not inbound.integration_id:
        return None
    values = received_columns(inbound)
    values.update(
        decision="failed", error_code="internal_error", reason=reason, http_status=http_status
    )
    # A crash is the bridge's fault, not the sender's: keep all of it, for a replay.
    values.update(full_body(inbound))
    received = rows.receive(session.connection(), inbound.integration_id, values)
    if received is None:
        return None
    receiver, delivery_id = received
    return RecordedDelivery(delivery_id, receiver.id, inbound.received_at)


def record_refused_delivery(
    session: Session,
    inbound: InboundDelivery,
    code: str,
    message: str,
    http_status: int,
    findings: dict[str, Any],
) -> RecordedDelivery | None:
    """Keep a delivery refused before it could be stored (rate-limited on its way into the
    spool) as refused, with its bounded body, as if it had been refused live."""
    if not inbound.integration_id:
        return None
    values = received_columns(inbound)
    values.update({key: findings[key] for key in Findings().columns() if key in findings})
    values.update(refused_columns(code, message, http_status))
    received = rows.receive(session.connection(), inbound.integration_id, values)
    if received is None:
        return None
    receiver, delivery_id = received
    return RecordedDelivery(delivery_id, receiver.id, inbound.received_at)


def received_columns(inbound: InboundDelivery) -> dict[str, Any]:
    """The delivery's columns as received; what reading it teaches is written later."""
    return {
        "received_at": inbound.received_at,
        "request_id": clip(inbound.request_id, 255),
        "hook_resource": clip(inbound.hook_resource, 64),
        "hook_timestamp": clip(inbound.hook_timestamp, 64),
        "content_type": clip(inbound.content_type, 255),
        "user_agent": clip(inbound.user_agent, 255),
        **_body_columns(inbound),
        "body_size": inbound.content_length
        if inbound.content_length is not None
        else len(inbound.body or b""),
        "signature_outcome": "not_checked",
        "decision": "received",
        "http_status": 0,
        "replay_of_id": inbound.replay_of_id,
        "replayed_by": clip(inbound.replayed_by, 255),
        "spool_id": inbound.spool_id,
    }


def _body_columns(inbound: InboundDelivery) -> dict[str, Any]:
    # Until the delivery is applied its record holds a bounded prefix (body_record.py).
    kept = body_record(None if inbound.is_too_large else inbound.body)
    return {"body": kept.prefix, "body_sha256": kept.sha256, "body_truncated": kept.is_truncated}


def clip(value: str | None, limit: int) -> str | None:
    # Headers may carry NUL, which PostgreSQL text cannot hold (found by fuzzing: a 500).
    return value.replace("\x00", "")[:limit] if value is not None else None


@dataclass
class IngestOutcome:
    """What became of the delivery; `error` is set when it was refused. `http_status` is
    what the sender is answered: computed once, by the web layer's table from `code`."""

    delivery: RecordedDelivery
    action: str
    matched: bool = False
    dedup_key: str | None = None
    incident: IncidentRow | None = None
    reason: str | None = None
    error: BridgeError | None = None
    # The incident's writes, made together with the delivery's decision.
    change: IncidentChange | None = None
    http_status: int = 0

    @property
    def code(self) -> str | None:
        """The refusal's error code; None when the delivery was accepted."""
        return self.error.code if self.error is not None else None

    @property
    def label(self) -> str:
        """What the delivery came to, in one word for the metrics: the code, or the action."""
        return self.code or self.action
