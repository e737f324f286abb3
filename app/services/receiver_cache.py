"""Each worker's copy of the integrations it received deliveries for, so that a delivery
can be authenticated and read before its transaction opens.

The copy is never trusted on its own: the statement that stores the delivery compares it
with the integration row as it is then (app/store/receiver_rows.receive_claiming on
PostgreSQL, the receiver read on SQLite), and a difference, from an edit by any process
(CLI, admin UI, another worker), sends the delivery down the ordinary path with the fresh
row, which also replaces the copy. So an edit takes effect on the next delivery on every
worker; nothing expires, nothing has to be told. Only ids that exist are kept (a flood of
unknown ids cannot fill it), and only ciphertexts, as in the database.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from app.domain.alerts import Alert
from app.domain.errors import BridgeError, RateLimited
from app.services.delivery_records import Findings, InboundDelivery
from app.services.refusals import authenticate, read_delivery
from app.store.encryption import SecretBox
from app.store.receiver_rows import Receiver

# Far more integrations than a bridge has; past it the copy starts over (never wrong, only
# one round of ordinary reads).
MAX_RECEIVERS = 4096


class ReceiverCache:
    """Integration id -> the Receiver last read for it, in this process."""

    def __init__(self, max_entries: int = MAX_RECEIVERS) -> None:
        self.max_entries = max_entries
        self._receivers: dict[str, Receiver] = {}

    def get(self, integration_id: str) -> Receiver | None:
        return self._receivers.get(integration_id)

    def put(self, receiver: Receiver) -> None:
        if receiver.id not in self._receivers and len(self._receivers) >= self.max_entries:
            self._receivers = {}
        self._receivers[receiver.id] = receiver

    def forget(self, integration_id: str) -> None:
        self._receivers.pop(integration_id, None)


@dataclass(frozen=True)
class Prepared:
    """A delivery read and authenticated with the cached `receiver`, before its
    transaction: valid only if the integration row still equals `receiver` then."""

    receiver: Receiver
    findings: Findings
    payload: Any
    alert: Alert


@dataclass(frozen=True)
class Limited:
    """A delivery read and authenticated with the cached integration, and past its rate
    limit: refused (429) whether it is applied now or kept in the spool."""

    error: RateLimited
    findings: Findings


class Admits(Protocol):
    """What preparing needs of the rate limits: the integration's bucket (RateLimited)."""

    def admit(self, integration_id: str, now: datetime) -> None: ...


def prepare_delivery(
    inbound: InboundDelivery,
    receivers: ReceiverCache,
    secrets: SecretBox,
    max_body_bytes: int,
    limits: Admits | None = None,
) -> Prepared | Limited | None:
    """Read the delivery with the cached integration and spend its rate-limit budget, out
    of any transaction (the HMAC, the JSON parse and the limiter's write then hold no
    database lock). Limited when the integration is past its limit (the limiter is a
    file or Redis: this works in a database outage too, before spooling). None when there
    is no copy, for a replay, or when anything else would refuse the delivery: refusals
    take the ordinary path, which records them."""
    if not inbound.integration_id or inbound.replay_of_id is not None:
        return None
    receiver = receivers.get(inbound.integration_id)
    if receiver is None:
        return None
    findings = Findings()
    try:
        payload, alert = read_delivery(receiver, inbound, secrets, max_body_bytes, findings)
    except BridgeError:
        return None
    if limits is not None:
        try:
            limits.admit(receiver.id, inbound.received_at)
        except RateLimited as limited:
            return Limited(limited, findings)
    return Prepared(receiver, findings, payload, alert)


def spend_spool_budget(
    inbound: InboundDelivery,
    receivers: ReceiverCache,
    secrets: SecretBox,
    max_body_bytes: int,
    limits: Admits,
) -> Limited | None:
    """For a delivery about to be spooled: spend its rate-limit budget if the cached
    integration authenticates it (its HMAC only: the drain reads the rest), and say
    Limited when it is past the limit. None otherwise: no copy, a replay, or a delivery
    the drain will refuse (disabled, too large, unsigned or badly signed), which is
    spooled unlimited rather than let it spend a genuine sender's budget.

    The spooled answer of an overloaded server: reading the alert (most of
    prepare_delivery's work) would be done again by the drain, so it is left to it,
    except for the rare limited delivery, whose stored refusal records what it said."""
    if not inbound.integration_id or inbound.replay_of_id is not None:
        return None
    receiver = receivers.get(inbound.integration_id)
    if receiver is None or not receiver.enabled:
        return None
    if inbound.is_too_large or inbound.body is None:
        return None
    findings = Findings()
    try:
        authenticate(receiver, findings, inbound, secrets, inbound.body)
    except BridgeError:
        return None
    try:
        limits.admit(receiver.id, inbound.received_at)
    except RateLimited as limited:
        return Limited(limited, _read_findings(receiver, inbound, secrets, max_body_bytes))
    return None


def _read_findings(
    receiver: Receiver, inbound: InboundDelivery, secrets: SecretBox, max_body_bytes: int
) -> Findings:
    """What reading the delivery found (format, resource, action, key) as far as it got."""
    findings = Findings()
    with contextlib.suppress(BridgeError):
        read_delivery(receiver, inbound, secrets, max_body_bytes, findings)
    return findings
