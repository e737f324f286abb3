"""ingest_delivery: one Sentry delivery in, one recorded decision out (SPEC 2-5)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.domain.alerts import Alert, Intent, parse_time, read_alert, source_for
from app.domain.body_record import PREFIX_BYTES, body_record
from app.domain.errors import (
    BridgeError,
    Conflict,
    IntegrationDisabled,
    IntegrationIdMissing,
    IntegrationNotFound,
    NotFound,
    PayloadTooLarge,
    SignatureMismatch,
    SignatureMissing,
    UnsupportedContentType,
)
from app.domain.incident import Note, SentryNews, change_incident
from app.domain.json_body import decode_json
from app.domain.lifecycle import (
    Decision,
    IncidentState,
    Status,
    Step,
    decide_acknowledge,
    decide_comment,
    decide_resolve,
    decide_trigger,
)
from app.domain.severity import Severity
from app.sentry.signatures import is_valid_signature
from app.services.notifications import queue_notifications
from app.services.sentry_installation_hooks import on_installation_webhook
from app.services.sentry_jobs import enqueue_enrichment
from app.services.write_back import is_echo
from app.store import queries
from app.store import receiver_memory as memory
from app.store import receiver_rows as rows
from app.store.encryption import SecretBox
from app.store.models import Delivery, Integration
from app.store.receiver_rows import IncidentChange, IncidentRow, Receiver, ServiceRef

log = logging.getLogger(__name__)
# A lost race for the open-incident index is retried; more than a handful means a bug.
_MAX_TRIGGER_ATTEMPTS = 5
# The intents that act on the incident of their dedup key.
_KEYED = frozenset({Intent.TRIGGER, Intent.RESOLVE, Intent.ACKNOWLEDGE, Intent.COMMENT})
# The open incident already looked up (and locked) for a delivery, if it was.
_Looked = tuple[IncidentRow | None] | None


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


@dataclass
class IngestOutcome:
    """What became of the delivery; `error` is set when it was refused."""

    delivery: RecordedDelivery
    action: str
    matched: bool = False
    dedup_key: str | None = None
    incident: IncidentRow | None = None
    reason: str | None = None
    error: BridgeError | None = None
    # The incident's writes, made together with the delivery's decision.
    change: IncidentChange | None = None


class Admission(Protocol):
    """The live receiver's rate limits (app/services/rate_limits.py); each raises RateLimited."""

    def admit(self, integration_id: str, now: datetime) -> None: ...

    def admit_refused(self, integration_id: str, now: datetime) -> None: ...

    def admit_unknown(self, address: str | None, now: datetime) -> None: ...


# What the sender is (or would have been) answered, from the refusal if there is one: the
# web layer's table. Without it (a test, a tool) the record says 0, "not answered".
AnswerStatus = Callable[[BridgeError | None], int]


def ingest_delivery(
    session: Session,
    inbound: InboundDelivery,
    secrets: SecretBox,
    max_body_bytes: int,
    limits: Admission | None = None,
    answer_status: AnswerStatus | None = None,
) -> IngestOutcome:
    """Record the delivery, authenticate it, and apply it to the incidents of its service.

    `limits` are the live receiver's rate limits: a delivery that would be applied spends
    its integration's budget; one refused before applying spends only the refused bucket
    (so forgeries never crowd out genuine deliveries); an unknown id, its address's. Past a
    limit the answer is RateLimited, recorded as refused like any other refusal.
    """
    if not inbound.integration_id:
        raise IntegrationIdMissing(
            "The webhook URL has no integrationId. Use the full URL the bridge gave for the "
            "integration: /api/integrations/sentry?integrationId=<id>."
        )
    connection = session.connection()
    received = rows.receive(connection, inbound.integration_id, _record(inbound))
    if received is None:
        if limits is not None:
            limits.admit_unknown(inbound.client_address, inbound.received_at)
        raise IntegrationNotFound(
            "No integration has this integrationId. Check the webhook URL configured in "
            "Sentry against the one the bridge shows for the integration."
        )
    receiver, delivery_id = received
    delivery = RecordedDelivery(delivery_id, receiver.id, inbound.received_at)
    status_of = answer_status or _not_answered
    findings = _Findings()
    try:
        try:
            payload, alert = _read(receiver, inbound, secrets, max_body_bytes, findings)
        except BridgeError:
            if limits is not None:  # past the refused bucket: RateLimited instead
                limits.admit_refused(receiver.id, inbound.received_at)
            raise
        if limits is not None:
            limits.admit(receiver.id, inbound.received_at)
        digest = _signed_body_digest(findings, inbound)
        outcome = _apply(session, receiver, delivery, inbound, secrets, payload, alert, digest)
    except BridgeError as error:
        # Every refusal comes before the first write to incidents (installation handling,
        # the one exception, keeps its own savepoint): only the delivery record is left.
        rows.update_delivery(
            connection, delivery.id, {**findings.columns(), **_refusal(error, status_of)}
        )
        return IngestOutcome(delivery=delivery, action="refused", error=error)
    rows.finish_delivery(
        connection,
        delivery.id,
        {
            **findings.columns(),
            **_full_body(inbound),
            "decision": outcome.action,
            "reason": outcome.reason,
            "incident_id": outcome.incident.id if outcome.incident is not None else None,
            "http_status": status_of(None),
        },
        outcome.change,
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


def _full_body(inbound: InboundDelivery) -> dict[str, Any]:
    """An applied delivery keeps its whole body (the record was begun with a prefix)."""
    if inbound.body is None or len(inbound.body) <= PREFIX_BYTES:
        return {}
    return {"body": inbound.body, "body_truncated": False}


def _signed_body_digest(findings: _Findings, inbound: InboundDelivery) -> str | None:
    """The SHA-256 of a body the integration's secret signed: the part of a delivery an
    eavesdropper cannot change, so the part a captured delivery is recognised by."""
    if findings.signature_outcome not in _SIGNED or inbound.body is None:
        return None
    return hashlib.sha256(inbound.body).hexdigest()


_SIGNED = frozenset({"valid", "valid_previous_secret"})


def _not_answered(_error: BridgeError | None) -> int:
    return 0


def _refusal(error: BridgeError, status_of: AnswerStatus) -> dict[str, Any]:
    return {
        "decision": "refused",
        "error_code": error.code,
        "reason": error.message,
        "http_status": status_of(error),
    }


@dataclass
class _Findings:
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


def replay_delivery(
    session: Session,
    delivery_id: int,
    actor: str,
    secrets: SecretBox,
    max_body_bytes: int,
    now: datetime,
    answer_status: AnswerStatus | None = None,
) -> IngestOutcome:
    """Apply a stored delivery again, through the same path, as a new delivery."""
    original = session.get(Delivery, delivery_id)
    if original is None:
        raise NotFound(f"No delivery with id {delivery_id}.")
    if original.body is None:
        raise Conflict(
            f"Delivery {delivery_id} was refused for its size and its body was not kept, "
            "so there is nothing to replay."
        )
    if original.body_truncated:
        raise Conflict(
            f"Delivery {delivery_id} was refused ({original.error_code}), so only the first "
            f"{len(original.body)} of its {original.body_size} bytes were kept: it cannot be "
            "replayed. Ask the sender to send it again."
        )
    inbound = InboundDelivery(
        integration_id=original.integration_id,
        body=original.body,
        received_at=now,
        content_length=len(original.body),
        content_type=original.content_type,
        request_id=original.request_id,
        hook_resource=original.hook_resource,
        hook_timestamp=original.hook_timestamp,
        user_agent=original.user_agent,
        replay_of_id=original.id,
        replayed_by=actor,
    )
    return ingest_delivery(session, inbound, secrets, max_body_bytes, answer_status=answer_status)


def record_failed_delivery(
    session: Session, inbound: InboundDelivery, http_status: int, reason: str
) -> RecordedDelivery | None:
    """Keep a delivery whose processing crashed, so nothing is lost without a trace."""
    if not inbound.integration_id:
        return None
    values = _record(inbound)
    values.update(
        decision="failed", error_code="internal_error", reason=reason, http_status=http_status
    )
    # A crash is the bridge's fault, not the sender's: keep all of it, for a replay.
    values.update(_full_body(inbound))
    received = rows.receive(session.connection(), inbound.integration_id, values)
    if received is None:
        return None
    receiver, delivery_id = received
    return RecordedDelivery(delivery_id, receiver.id, inbound.received_at)


def _record(inbound: InboundDelivery) -> dict[str, Any]:
    """The delivery's columns as received; what reading it teaches is written later."""
    return {
        "received_at": inbound.received_at,
        "request_id": _clip(inbound.request_id, 255),
        "hook_resource": _clip(inbound.hook_resource, 64),
        "hook_timestamp": _clip(inbound.hook_timestamp, 64),
        "content_type": _clip(inbound.content_type, 255),
        "user_agent": _clip(inbound.user_agent, 255),
        **_body_columns(inbound),
        "body_size": inbound.content_length
        if inbound.content_length is not None
        else len(inbound.body or b""),
        "signature_outcome": "not_checked",
        "decision": "received",
        "http_status": 0,
        "replay_of_id": inbound.replay_of_id,
        "replayed_by": _clip(inbound.replayed_by, 255),
        "spool_id": inbound.spool_id,
    }


def _body_columns(inbound: InboundDelivery) -> dict[str, Any]:
    # Until the delivery is applied its record holds a bounded prefix (body_record.py).
    kept = body_record(None if inbound.is_too_large else inbound.body)
    return {"body": kept.prefix, "body_sha256": kept.sha256, "body_truncated": kept.is_truncated}


def _clip(value: str | None, limit: int) -> str | None:
    # Headers may carry NUL, which PostgreSQL text cannot hold (found by fuzzing: a 500).
    return value.replace("\x00", "")[:limit] if value is not None else None


# ---------------------------------------------------------------- reading


def _read(
    receiver: Receiver,
    inbound: InboundDelivery,
    secrets: SecretBox,
    max_body_bytes: int,
    findings: _Findings,
) -> tuple[Any, Alert]:
    """Everything that may refuse a delivery, in order; the payload and what it says."""
    if not receiver.enabled:
        raise IntegrationDisabled(
            "This integration is disabled in the bridge, so deliveries are recorded but not "
            "applied. An admin can enable it again."
        )
    if inbound.is_too_large or inbound.body is None:
        size = inbound.content_length if inbound.content_length is not None else "unknown"
        raise PayloadTooLarge(
            f"The body ({size} bytes) is larger than the {max_body_bytes} bytes this bridge "
            "accepts.",
            limit=max_body_bytes,
        )
    body = inbound.body
    _authenticate(receiver, findings, inbound, secrets, body)
    payload = _decode(inbound, body)
    alert = read_alert(payload, inbound.hook_resource)
    findings.format = alert.format.value
    findings.resource = _clip(alert.resource, 64)
    findings.action = _clip(alert.action, 64)
    findings.dedup_key = _clip(alert.dedup_key, 255)
    return payload, alert


def _authenticate(
    receiver: Receiver,
    findings: _Findings,
    inbound: InboundDelivery,
    secrets: SecretBox,
    body: bytes,
) -> None:
    if inbound.replay_of_id is not None:
        findings.signature_outcome = "replayed_by_person"
        return
    if receiver.secret_ciphertext is None:
        findings.signature_outcome = "not_required"
        return
    if not inbound.signature:
        findings.signature_outcome = "missing"
        raise SignatureMissing(
            "This integration has a signing secret, so the request must carry a "
            "Sentry-Hook-Signature header: the lowercase hex HMAC-SHA256 of the raw body, "
            "keyed with the secret. In Sentry, the secret is the integration's Client Secret."
        )
    if is_valid_signature(secrets.decrypt(receiver.secret_ciphertext), body, inbound.signature):
        findings.signature_outcome = "valid"
        return
    if (
        receiver.previous_secret_ciphertext is not None
        and receiver.previous_secret_expires_at is not None
        and inbound.received_at < receiver.previous_secret_expires_at
        and is_valid_signature(
            secrets.decrypt(receiver.previous_secret_ciphertext), body, inbound.signature
        )
    ):
        findings.signature_outcome = "valid_previous_secret"
        return
    findings.signature_outcome = "mismatch"
    raise SignatureMismatch(
        "The Sentry-Hook-Signature header does not match the body. The bridge's signing "
        "secret for this integration must equal the Client Secret of the Sentry integration, "
        "and the signature must be computed over the raw body exactly as sent."
    )


def _decode(inbound: InboundDelivery, body: bytes) -> Any:
    content_type = (inbound.content_type or "").split(";", 1)[0].strip().lower()
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedContentType(
            f"The body must be JSON sent with Content-Type: application/json "
            f"(this request said {content_type!r})."
        )
    return decode_json(body)


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
) -> IngestOutcome:
    connection = session.connection()
    outcome = IngestOutcome(delivery=delivery, action=Step.IGNORE.value, dedup_key=alert.dedup_key)
    if inbound.replay_of_id is not None:
        # A replay applies the delivery again on purpose: its event counts again too.
        alert = replace(alert, event_id=None)
    service = receiver.service
    if alert.intent is Intent.TRIGGER:
        service = _routed_service(session, receiver, alert)
    # The open incident the delivery acts on is locked with the Request-ID and body claims
    # (one round trip); `looked` says whether that happened. A person's replay claims
    # nothing: the point of it is to apply the delivery again.
    lock = (service.id, alert.dedup_key) if alert.intent in _KEYED and alert.dedup_key else None
    looked: _Looked = None
    request_id = _clip(inbound.request_id, 255) or None
    if inbound.replay_of_id is None and (request_id or body_sha256):
        taken, open_incident = rows.claim_delivery(
            connection,
            receiver.id,
            delivery.id,
            inbound.received_at,
            request_id=request_id,
            body_sha256=body_sha256,
            lock=lock,
        )
        if lock is not None:
            looked = (open_incident,)
        if taken is not None:
            outcome.action = "duplicate_delivery"
            # The incident the first delivery acted on, when it is still open: the sender
            # (often Sentry retrying) learns where its news went, at no extra round trip.
            outcome.incident = open_incident
            outcome.matched = open_incident is not None
            outcome.reason = (
                f"Request-ID {inbound.request_id} was already applied "
                f"(delivery {taken.delivery_id})"
                if taken.claim == "request_id"
                else f"this signed body was already applied (delivery {taken.delivery_id}); "
                "a re-sent body is never applied twice, whatever its headers"
            )
            return outcome

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
    at = _delivery_time(alert, inbound)
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
    state = _state(incident)
    if alert.intent is Intent.COMMENT:
        decision = decide_comment(state)
    elif alert.intent is Intent.RESOLVE:
        decision = decide_resolve(state, at)
    else:
        decision = decide_acknowledge(state, at, assigns=alert.assignee is not None)
    if incident is not None:
        outcome.change = _changed(incident, decision, alert, at, delivery)
    return _answer(outcome, decision, incident)


def _delivery_time(alert: Alert, inbound: InboundDelivery) -> datetime:
    """When this delivery's news happened, by the sender's own clock (never the future).

    Sentry-Hook-Timestamp is whole seconds, cut down from the send time; the end of that
    second is the latest the news can be, and so the reading that never calls a genuine
    delivery stale. Without it, the payload's own time (lastSeen, event timestamp).
    """
    hook_time = parse_time(inbound.hook_timestamp)
    if hook_time is not None:
        at = hook_time + timedelta(microseconds=999_999)
        # The header is not signed, the payload is: news of an event is never newer than
        # the event the payload names, so a captured body re-sent with a fresh header
        # stays as old as it is (a status change names no time of its own: SPEC 3.4).
        if alert.intent is Intent.TRIGGER and alert.occurred_at is not None:
            at = min(at, alert.occurred_at)
    else:
        at = alert.occurred_at or inbound.received_at
    return min(at, inbound.received_at)


def _state(incident: IncidentRow | None) -> IncidentState | None:
    if incident is None:
        return None
    return IncidentState(
        status=Status(incident.status),
        severity=Severity(incident.severity),
        last_transition_at=incident.last_transition_at,
        last_event_at=incident.last_event_at,
        resolved_at=incident.resolved_at,
    )


def _trigger(
    session: Session,
    service: ServiceRef,
    delivery: RecordedDelivery,
    alert: Alert,
    at: datetime,
    outcome: IngestOutcome,
    looked: _Looked,
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
        decision = decide_trigger(_state(incident), _state(latest), at, window, alert.can_reopen)
        if decision.step is Step.ADD_EVENT:
            assert incident is not None
            earlier = _counted_before(connection, incident, alert, delivery)
            if earlier is not None:
                return _duplicate_event(outcome, alert, incident, earlier)
            outcome.change = _changed(incident, decision, alert, at, delivery)
            _adopt_project_name(connection, names_service_id, incident, alert, delivery)
            return _answer(outcome, decision, incident)
        if decision.step is Step.IGNORE:
            return _answer(outcome, decision, latest)
        if decision.step is Step.REOPEN:
            assert latest is not None
            try:
                # Another worker may open the same key between our read and this write;
                # the partial unique index refuses the reopen, and we retry as an event.
                with session.begin_nested():
                    earlier = _counted_before(connection, latest, alert, delivery)
                    if earlier is None:
                        change = _changed(latest, decision, alert, at, delivery)
                        _adopt_project_name(connection, names_service_id, latest, alert, delivery)
                        rows.save_incident(connection, change)
            except IntegrityError:
                continue
            if earlier is not None:  # a retry of the event that was counted before it resolved
                return _duplicate_event(outcome, alert, latest, earlier)
            outcome.change = IncidentChange(latest, None, change.timeline, change.events)
            target = latest
        else:
            alert = _named(connection, names_service_id, alert, delivery)
            opened = _open_incident(connection, service.id, alert, at, delivery)
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


def _counted_before(
    connection: Connection, incident: IncidentRow, alert: Alert, delivery: RecordedDelivery
) -> int | None:
    """Count the trigger's Sentry event on the incident: the delivery that counted it
    before, if one did. Only event formats carry an event id (issue webhooks do not)."""
    if alert.event_id is None:
        return None
    return memory.claim_event(
        connection, incident.id, alert.event_id, delivery.id, delivery.received_at
    )


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


def _named(
    connection: Connection, service_id: int, alert: Alert, delivery: RecordedDelivery
) -> Alert:
    """The alert with its project's one name: learnt from a delivery that gives both slug
    and name, used for one that gives only the slug (event alerts, errors, metric alerts)."""
    if alert.project is None:
        return alert
    if alert.project_name is not None:
        memory.learn_project_name(
            connection, service_id, alert.project, alert.project_name, delivery.received_at
        )
        return alert
    learned = memory.learned_project_name(connection, service_id, alert.project)
    return replace(alert, source=source_for(learned)[:255]) if learned else alert


def _adopt_project_name(
    connection: Connection,
    service_id: int,
    incident: IncidentRow,
    alert: Alert,
    delivery: RecordedDelivery,
) -> None:
    """An open incident named by its slug (or an old name) takes the name this delivery
    gives its project, and the service learns it. Nothing is written when it is the same."""
    if alert.project is None or alert.project_name is None or incident.source == alert.source:
        return
    incident.source = alert.source
    memory.learn_project_name(
        connection, service_id, alert.project, alert.project_name, delivery.received_at
    )


def _routed_service(session: Session, receiver: Receiver, alert: Alert) -> ServiceRef:
    """The integration's service, unless the Sentry alert rule chose another one that the
    rule's installation may use (a plain integration never leaves its own service)."""
    if alert.target_service is None:
        return receiver.service
    installation = queries.find_installation_of(session, receiver.id, alert.installation_uuid)
    if installation is None:
        log.warning(
            "alert rule chose service %r, but integration %s is no Sentry installation; using %r",
            alert.target_service,
            receiver.id[:6],
            receiver.service.name,
        )
        return receiver.service
    chosen = rows.find_service(session.connection(), alert.target_service)
    allowed = {service.id for service in queries.services_of_organisation(session, installation)}
    if chosen is None or chosen.id not in allowed:
        log.warning(
            "alert rule chose service %r, which installation %s may not use; using %r",
            alert.target_service,
            (installation.uuid or "")[:8],
            receiver.service.name,
        )
        return receiver.service
    return chosen


def _answer(
    outcome: IngestOutcome, decision: Decision, incident: IncidentRow | None
) -> IngestOutcome:
    outcome.action = decision.step.value
    outcome.matched = decision.matched
    outcome.reason = decision.reason
    outcome.incident = incident
    return outcome


def _open_incident(
    connection: Connection,
    service_id: int,
    alert: Alert,
    at: datetime,
    delivery: RecordedDelivery,
) -> IncidentChange | None:
    """A new incident and its first timeline entry; None if the key was opened meanwhile."""
    assert alert.dedup_key is not None
    change = change_incident(
        None, _news(Decision(Step.CREATE, matched=False), alert), at, delivery.received_at
    )
    values = {"service_id": service_id, **change.fields}
    incident_id = rows.insert_open_incident(connection, values)
    if incident_id is None:
        return None
    if alert.event_id is not None:  # a new incident: nothing can have counted it yet
        memory.claim_event(
            connection, incident_id, alert.event_id, delivery.id, delivery.received_at
        )
    incident = IncidentRow(id=incident_id, **values)
    timeline = [_entry(note, incident.id, delivery.id, at) for note in change.notes]
    return IncidentChange(incident, None, timeline, change.events)


def _sentry_links(alert: Alert) -> dict[str, str]:
    """The Sentry identifiers this delivery names (an absent one never erases a known one)."""
    links = {
        "sentry_issue_id": alert.issue_id,
        "sentry_short_id": alert.short_id,
        "sentry_issue_url": alert.issue_url,
        "sentry_project": alert.project,
    }
    return {name: value for name, value in links.items() if value}


def _entry(note: Note, incident_id: int, delivery_id: int, at: datetime) -> dict[str, Any]:
    """A timeline row for a note a delivery's change writes."""
    return {
        "incident_id": incident_id,
        "at": at,
        "kind": note.kind,
        "actor": note.actor,
        "message": note.message,
        "data": note.data,
        "delivery_id": delivery_id,
    }


def _news(decision: Decision, alert: Alert) -> SentryNews:
    return SentryNews(
        step=decision.step,
        severity=alert.severity.value,
        title=alert.title,
        source=alert.source,
        dedup_key=alert.dedup_key,
        resource=alert.resource,
        action=alert.action,
        actor=alert.actor,
        assignee=alert.assignee,
        comment=alert.comment,
        note_kind=alert.note_kind,
        note_data=alert.note_data,
        substatus=alert.substatus,
        is_latest_event=decision.is_latest_event,
        links=_sentry_links(alert),
    )


def _changed(
    incident: IncidentRow,
    decision: Decision,
    alert: Alert,
    at: datetime,
    delivery: RecordedDelivery,
) -> IncidentChange:
    """The decided step applied to a locked incident, as the writes it needs."""
    before = incident.snapshot()
    change = change_incident(before, _news(decision, alert), at, delivery.received_at)
    for name, value in change.fields.items():
        setattr(incident, name, value)
    timeline = [_entry(note, incident.id, delivery.id, at) for note in change.notes]
    return IncidentChange(incident, before, timeline, change.events)
