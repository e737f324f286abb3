"""ingest_delivery: one Sentry delivery in, one recorded decision out (SPEC 2-5).

Core rows and ORM objects share this transaction, on purpose. The hot path (the delivery
record, claims, incidents, timeline, outbox) is Core on `session.connection()`, because
its statement count is the receiver's cost (tests/integration/test_ingest_statements.py).
The rarer steps reuse the ORM services they share with the rest of the bridge: routing and
echo checks only read (installations, Sentry jobs: tables the Core path never writes), the
enrichment job row is flushed at once, and an installation webhook works on the
Integration in its own savepoint. The ORM never holds an incident or a delivery here, so
neither side can read a stale copy of the other's write.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.domain.alerts import Alert, Intent
from app.domain.errors import (
    BridgeError,
    IntegrationIdMissing,
    IntegrationNotFound,
)
from app.domain.lifecycle import (
    Decision,
    Step,
    decide_acknowledge,
    decide_comment,
    decide_resolve,
    decide_trigger,
)
from app.domain.sentry_news import news_time
from app.services.delivery_claims import (
    DeliveryClaim,
    Looked,
    claim_delivery,
    claim_plan,
    claimed_result,
    counted_before,
)
from app.services.delivery_records import (
    AnswerStatus,
    Findings,
    InboundDelivery,
    IngestOutcome,
    RecordedDelivery,
    full_body,
    not_answered,
    received_columns,
    refusal_columns,
    signed_body_digest,
)
from app.services.incident_changes import changed_incident, incident_state, open_incident
from app.services.notifications import queue_notifications
from app.services.project_names import learn_adopted_name, with_project_name
from app.services.receiver_cache import Prepared, ReceiverCache
from app.services.refusals import read_delivery
from app.services.routing import routed_service
from app.services.sentry_installation_hooks import on_installation_webhook
from app.services.sentry_jobs import enqueue_enrichment
from app.services.write_back import is_echo
from app.store import receiver_rows as rows
from app.store.encryption import SecretBox
from app.store.models import Integration
from app.store.receiver_rows import IncidentChange, IncidentRow, Receiver, ServiceRef

log = logging.getLogger(__name__)
# A lost race for the open-incident index is retried; more than a handful means a bug.
_MAX_TRIGGER_ATTEMPTS = 5
# The intents that act on the incident of their dedup key.
_KEYED = frozenset({Intent.TRIGGER, Intent.RESOLVE, Intent.ACKNOWLEDGE, Intent.COMMENT})


class Admission(Protocol):
    """The live receiver's rate limits (app/services/rate_limits.py); each raises RateLimited."""

    def admit(self, integration_id: str, now: datetime) -> None: ...

    def admit_refused(self, integration_id: str, now: datetime) -> None: ...

    def admit_unknown(self, address: str | None, now: datetime) -> None: ...


def ingest_delivery(
    session: Session,
    inbound: InboundDelivery,
    secrets: SecretBox,
    max_body_bytes: int,
    limits: Admission | None = None,
    answer_status: AnswerStatus | None = None,
    prepared: Prepared | None = None,
    receivers: ReceiverCache | None = None,
) -> IngestOutcome:
    """Record the delivery, authenticate it, and apply it to the incidents of its service.

    `limits` are the live receiver's rate limits: a delivery that would be applied spends
    its integration's budget; one refused before applying spends only the refused bucket
    (so forgeries never crowd out genuine deliveries); an unknown id, its address's. Past a
    limit the answer is RateLimited, recorded as refused like any other refusal.

    `prepared`: the delivery already read, and its budget spent, with `receivers`' copy of
    the integration (receiver_cache.prepare_delivery); used only if the integration is
    still that copy. `receivers` learns the integration as this transaction read it.
    """
    if not inbound.integration_id:
        raise IntegrationIdMissing(
            "The webhook URL has no integrationId. Use the full URL the bridge gave for the "
            "integration: /api/integrations/sentry?integrationId=<id>."
        )
    connection = session.connection()
    # With a prepared reading, the statement that stores the delivery checks the copy it
    # was read with (and on PostgreSQL claims it too); `still`: the copy held.
    claimed = None
    still = False
    received: tuple[Receiver, int] | None = None
    if prepared is not None and connection.dialect.name == "postgresql":
        claimed = _receive_claiming(session, inbound, prepared)
        received = (claimed.receiver, claimed.delivery_id) if claimed is not None else None
        still = claimed is not None and claimed.claims_made
    else:
        if prepared is not None:
            stored = rows.insert_if_unchanged(
                connection, received_columns(inbound), prepared.receiver
            )
            if stored is not None:
                received, still = (prepared.receiver, stored), True
        if received is None:
            received = rows.receive(connection, inbound.integration_id, received_columns(inbound))
    if received is None:
        if receivers is not None:
            receivers.forget(inbound.integration_id)
        if limits is not None:
            limits.admit_unknown(inbound.client_address, inbound.received_at)
        raise IntegrationNotFound(
            "No integration has this integrationId. Check the webhook URL configured in "
            "Sentry against the one the bridge shows for the integration."
        )
    receiver, delivery_id = received
    if receivers is not None:
        receivers.put(receiver)
    delivery = RecordedDelivery(delivery_id, receiver.id, inbound.received_at)
    status_of = answer_status or not_answered
    findings = prepared.findings if prepared is not None and still else Findings()
    try:
        if prepared is not None and still:
            payload, alert = prepared.payload, prepared.alert
        else:
            try:
                payload, alert = read_delivery(receiver, inbound, secrets, max_body_bytes, findings)
            except BridgeError:
                if limits is not None:  # past the refused bucket: RateLimited instead
                    limits.admit_refused(receiver.id, inbound.received_at)
                raise
            if limits is not None and prepared is None:  # a prepared one was admitted
                limits.admit(receiver.id, inbound.received_at)
        digest = signed_body_digest(findings, inbound)
        made = _claim_of(inbound, claimed) if claimed is not None and claimed.claims_made else None
        outcome = _apply(
            session, receiver, delivery, inbound, secrets, payload, alert, digest, made
        )
    except BridgeError as error:
        # Every refusal comes before the first write to incidents (installation handling,
        # the one exception, keeps its own savepoint): only the delivery record is left.
        status = status_of(error.code)
        rows.update_delivery(
            connection, delivery.id, {**findings.columns(), **refusal_columns(error, status)}
        )
        return IngestOutcome(delivery=delivery, action="refused", error=error, http_status=status)
    outcome.http_status = status_of(None)
    rows.finish_delivery(
        connection,
        delivery.id,
        {
            **findings.columns(),
            **full_body(inbound),
            "decision": outcome.action,
            "reason": outcome.reason,
            "incident_id": outcome.incident.id if outcome.incident is not None else None,
            "http_status": outcome.http_status,
        },
        outcome.change,
        # The outbox rows below are the only writes that may follow.
        is_last=outcome.change is None or not outcome.change.events,
    )
    if outcome.change is not None and outcome.change.events:
        # The outbox rows commit with the change, or not at all (SPEC 7).
        queue_notifications(
            connection,
            outcome.change.incident.snapshot(),
            outcome.change.events,
            inbound.received_at,
        )
    return outcome


def _target(
    session: Session, receiver: Receiver, alert: Alert
) -> tuple[ServiceRef, tuple[int, str] | None]:
    """The service the alert goes to, and the (service, key) whose open incident to lock."""
    service = receiver.service
    if alert.intent is Intent.TRIGGER:
        service = routed_service(session, receiver, alert)
    lock = (service.id, alert.dedup_key) if alert.intent in _KEYED and alert.dedup_key else None
    return service, lock


def _receive_claiming(
    session: Session, inbound: InboundDelivery, prepared: Prepared
) -> rows.Claimed | None:
    """PostgreSQL: the delivery's row, its claims and its incident's lock in one round trip,
    for a delivery read with the cached integration (the claims only if it is unchanged)."""
    _service, lock = _target(session, prepared.receiver, prepared.alert)
    plan = claim_plan(inbound, signed_body_digest(prepared.findings, inbound), lock)
    return rows.receive_claiming(
        session.connection(),
        received_columns(inbound),
        prepared.receiver,
        request_id=plan.request_id if plan is not None else None,
        body_sha256=plan.body_sha256 if plan is not None else None,
        lock=plan.lock if plan is not None else None,
    )


def _claim_of(inbound: InboundDelivery, claimed: rows.Claimed) -> DeliveryClaim:
    return claimed_result(inbound, claimed.taken, claimed.incident, claimed.locked)


# ---------------------------------------------------------------- applying


def _apply(
    session: Session,
    receiver: Receiver,
    delivery: RecordedDelivery,
    inbound: InboundDelivery,
    secrets: SecretBox,
    payload: Any,
    alert: Alert,
    body_sha256: str | None = None,
    made: DeliveryClaim | None = None,
) -> IngestOutcome:
    """`made`: the claims already made with the delivery's row (receive_claiming)."""
    connection = session.connection()
    outcome = IngestOutcome(delivery=delivery, action=Step.IGNORE.value, dedup_key=alert.dedup_key)
    if inbound.replay_of_id is not None:
        # A replay applies the delivery again on purpose: its event counts again too.
        alert = replace(alert, event_id=None)
    service, lock = _target(session, receiver, alert)
    # The open incident the delivery acts on is locked with the Request-ID and body claims
    # (one round trip); `looked` says whether that happened.
    claim = (
        made
        if made is not None
        else claim_delivery(connection, receiver.id, delivery, inbound, body_sha256, lock)
    )
    if claim.duplicate_reason is not None:
        outcome.action = "duplicate_delivery"
        outcome.incident = claim.open_incident
        outcome.matched = claim.open_incident is not None
        outcome.reason = claim.duplicate_reason
        return outcome
    looked = claim.looked

    if alert.intent is Intent.IGNORE:
        outcome.reason = alert.reason or "this delivery does not drive incidents"
        return outcome
    if alert.intent is Intent.INSTALLATION:
        integration = session.get(Integration, receiver.id)
        # The row `receive` read in this transaction, as the ORM object the handler needs.
        assert integration is not None
        with session.begin_nested():  # a refusal in here must not keep half its writes
            outcome.reason = on_installation_webhook(
                session, integration, alert.action, payload, secrets, inbound.received_at
            )
        return outcome

    assert alert.dedup_key is not None  # read_alert refuses keyed intents without one
    at = news_time(alert, inbound.hook_timestamp, inbound.received_at)
    if alert.intent is Intent.TRIGGER:
        return _trigger(session, service, delivery, alert, at, outcome, looked, receiver.service.id)

    if alert.intent in {Intent.RESOLVE, Intent.ACKNOWLEDGE} and is_echo(
        session, receiver.id, payload, alert.issue_id, inbound.received_at
    ):
        outcome.reason = "echo of the bridge's own write-back to Sentry; already applied here"
        return outcome
    # An incident the claim's statement did not see may still exist (its snapshot predates
    # a wait on the claim): a miss is looked up again, in a statement of its own.
    incident = (
        (looked[0] if looked is not None else None)
        or rows.lock_open_incident(connection, service.id, alert.dedup_key)
        or rows.lock_open_incident_routed_from(connection, receiver.id, alert.dedup_key)
    )
    state = incident_state(incident)
    if alert.intent is Intent.COMMENT:
        decision = decide_comment(state)
    elif alert.intent is Intent.RESOLVE:
        decision = decide_resolve(state, at)
    else:
        decision = decide_acknowledge(state, at, assigns=alert.assignee is not None)
    if incident is not None:
        outcome.change = changed_incident(incident, decision, alert, at, delivery)
    return _answer(outcome, decision, incident)


def _trigger(
    session: Session,
    service: ServiceRef,
    delivery: RecordedDelivery,
    alert: Alert,
    at: datetime,
    outcome: IngestOutcome,
    looked: Looked,
    names_service_id: int,
) -> IngestOutcome:
    """`names_service_id`: the service whose learned Sentry project names apply (the
    integration's own, even when an alert rule routed the incident elsewhere)."""
    assert alert.dedup_key is not None
    connection = session.connection()
    window = timedelta(minutes=service.reopen_window_minutes)
    for attempt in range(_MAX_TRIGGER_ATTEMPTS):
        if attempt == 0 and looked is not None:
            incident = looked[0]
        else:
            incident = rows.lock_open_incident(connection, service.id, alert.dedup_key)
        latest = (
            None
            if incident is not None
            else rows.lock_latest_resolved_incident(connection, service.id, alert.dedup_key)
        )
        decision = decide_trigger(
            incident_state(incident), incident_state(latest), at, window, alert.can_reopen
        )
        if decision.step is Step.ADD_EVENT:
            assert incident is not None
            earlier = counted_before(connection, incident, alert, delivery)
            if earlier is not None:
                return _duplicate_event(outcome, alert, incident, earlier)
            outcome.change = changed_incident(incident, decision, alert, at, delivery)
            learn_adopted_name(
                connection, names_service_id, outcome.change, alert, delivery.received_at
            )
            return _answer(outcome, decision, incident)
        if decision.step is Step.IGNORE:
            return _answer(outcome, decision, latest)
        if decision.step is Step.REOPEN:
            assert latest is not None
            try:
                # Another worker may open the same key between our read and this write;
                # the partial unique index refuses the reopen, and we retry as an event.
                with session.begin_nested():
                    earlier = counted_before(connection, latest, alert, delivery)
                    if earlier is None:
                        change = changed_incident(latest, decision, alert, at, delivery)
                        learn_adopted_name(
                            connection, names_service_id, change, alert, delivery.received_at
                        )
                        rows.save_incident(connection, change)
            except IntegrityError:
                continue
            if earlier is not None:  # a retry of the event that was counted before it resolved
                return _duplicate_event(outcome, alert, latest, earlier)
            outcome.change = IncidentChange(latest, None, change.timeline, change.events)
            target = latest
        else:
            alert = with_project_name(connection, names_service_id, alert, delivery)
            opened = open_incident(connection, service.id, alert, at, delivery)
            if opened is None:  # another worker opened the key first: add the event to it
                continue
            outcome.change = opened
            target = opened.incident
        # Enrichment runs after the webhook is answered: a job row, committed with this.
        enqueue_enrichment(
            session,
            target.id,
            target.sentry_issue_id,
            delivery.integration_id,
            alert.installation_uuid,
            delivery.received_at,
            is_new_incident=decision.step is Step.CREATE,
        )
        return _answer(outcome, decision, target)
    raise RuntimeError(f"could not settle the incident for {alert.dedup_key} after retries")


def _duplicate_event(
    outcome: IngestOutcome, alert: Alert, incident: IncidentRow, earlier: int
) -> IngestOutcome:
    first = f"delivery {earlier}" if earlier > 0 else "an earlier delivery"
    outcome.action = "duplicate_delivery"
    outcome.matched = True
    outcome.incident = incident
    outcome.reason = (
        f"Sentry event {alert.event_id} was already counted on this incident ({first}); "
        "Sentry re-sends a webhook that failed under a new Request-ID"
    )
    return outcome


def _answer(
    outcome: IngestOutcome, decision: Decision, incident: IncidentRow | None
) -> IngestOutcome:
    outcome.action = decision.step.value
    outcome.matched = decision.matched
    outcome.reason = decision.reason
    outcome.incident = incident
    return outcome
