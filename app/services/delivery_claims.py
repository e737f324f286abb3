"""Claims that keep a delivery from being applied twice: its Request-ID, its signed body
(SPEC 5), and the Sentry event a trigger counts on an incident."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from app.domain.alerts import Alert
from app.services.delivery_records import InboundDelivery, RecordedDelivery, clip
from app.store import receiver_memory as memory
from app.store import receiver_rows as rows
from app.store.receiver_rows import IncidentRow

# The open incident already looked up (and locked) for a delivery, if it was.
Looked = tuple[IncidentRow | None] | None


@dataclass(frozen=True)
class DeliveryClaim:
    """What claiming a delivery found: why it was applied before (None: it was not), and
    the open incident the claim's statement locked, when it was asked to."""

    duplicate_reason: str | None = None
    looked: Looked = None

    @property
    def open_incident(self) -> IncidentRow | None:
        return self.looked[0] if self.looked is not None else None


@dataclass(frozen=True)
class ClaimPlan:
    """What a delivery claims: its Request-ID and signed body's hash (either may be None),
    and the (service id, dedup key) whose open incident is locked with them."""

    request_id: str | None
    body_sha256: str | None
    lock: tuple[int, str] | None


def claim_plan(
    inbound: InboundDelivery, body_sha256: str | None, lock: tuple[int, str] | None
) -> ClaimPlan | None:
    """None when there is nothing to claim. A person's replay claims nothing: the point
    of it is to apply the delivery again."""
    request_id = clip(inbound.request_id, 255) or None
    if inbound.replay_of_id is not None or not (request_id or body_sha256):
        return None
    return ClaimPlan(request_id, body_sha256, lock)


def claim_delivery(
    connection: Connection,
    receiver_id: str,
    delivery: RecordedDelivery,
    inbound: InboundDelivery,
    body_sha256: str | None,
    lock: tuple[int, str] | None,
) -> DeliveryClaim:
    """Claim the delivery's Request-ID and signed body, locking the open incident of `lock`
    (service id, dedup key) in the same round trip."""
    plan = claim_plan(inbound, body_sha256, lock)
    if plan is None:
        return DeliveryClaim()
    taken, open_incident = rows.claim_delivery(
        connection,
        receiver_id,
        delivery.id,
        inbound.received_at,
        request_id=plan.request_id,
        body_sha256=plan.body_sha256,
        lock=plan.lock,
    )
    return claimed_result(inbound, taken, open_incident, lock is not None)


def claimed_result(
    inbound: InboundDelivery,
    taken: rows.TakenClaim | None,
    open_incident: IncidentRow | None,
    looked_for: bool,
) -> DeliveryClaim:
    """The claim's answer from what its statement found (`looked_for`: it locked)."""
    looked: Looked = (open_incident,) if looked_for else None
    if taken is None:
        return DeliveryClaim(looked=looked)
    reason = (
        f"Request-ID {inbound.request_id} was already applied (delivery {taken.delivery_id})"
        if taken.claim == "request_id"
        else f"this signed body was already applied (delivery {taken.delivery_id}); "
        "a re-sent body is never applied twice, whatever its headers"
    )
    # The incident the first delivery acted on, when it is still open: the sender (often
    # Sentry retrying) learns where its news went, at no extra round trip.
    return DeliveryClaim(reason, (open_incident,))


def counted_before(
    connection: Connection, incident: IncidentRow, alert: Alert, delivery: RecordedDelivery
) -> int | None:
    """Count the trigger's Sentry event on the incident: the delivery that counted it
    before, if one did. Only event formats carry an event id (issue webhooks do not)."""
    if alert.event_id is None:
        return None
    return memory.claim_event(
        connection, incident.id, alert.event_id, delivery.id, delivery.received_at
    )
