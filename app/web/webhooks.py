"""POST /api/integrations/sentry?integrationId=<id>: the receiver."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestTimeout

from app.domain.errors import BridgeError
from app.extensions import bridge
from app.services.delivery_records import InboundDelivery, IngestOutcome, record_failed_delivery
from app.services.ingest import ingest_delivery
from app.services.receiver_cache import (
    Limited,
    Prepared,
    ReceiverCache,
    prepare_delivery,
    spend_spool_budget,
)
from app.services.spooled_deliveries import SpooledRefusal, spool_delivery
from app.store.database import is_busy, is_unavailable
from app.store.group_commit import GroupCommit
from app.web.admission import (
    AdmissionControl,
    arrived_at,
    listen_backlog,
    spooled_before_commit,
    spooled_for_lock_wait,
)
from app.web.api.docs import documented
from app.web.errors import answer_status, error_response, refusal_response
from app.web.schemas import ErrorSchema, IngestResultSchema, WebhookQuerySchema
from app.web.security import rate_limits

log = logging.getLogger(__name__)
# Kept back from the sender's deadline for spooling and answering after a cancelled apply.
_ANSWER_MARGIN_SECONDS = 0.15
# A COMMIT cannot be taken back once sent, and one that runs past the sender's second is
# a delivery applied but answered late: it is sent only with this much left before the
# transaction's deadline; later, the transaction is rolled back and the delivery spooled.
_COMMIT_RESERVE_SECONDS = 0.1


# Set by app/web/spool_first.py on a delivery it decided, before Flask, to spool but
# hands to the route to answer (past its rate limit; a body it could not read whole; a
# spool write that failed): why it is spooled, and whether its budget was spent there.
SPOOLED_FIRST_KEY = "bridge.spooled_first"


@dataclass(frozen=True)
class SpooledFirst:
    reason: str
    spent: bool
    limited: Limited | None = None


class _TooLateToCommit(Exception):
    """The delivery's transaction is done, but too late to commit and answer in time."""


blueprint = Blueprint("webhooks", __name__)
_result_schema = IngestResultSchema()


def _read_inbound(max_bytes: int) -> InboundDelivery:
    declared = request.content_length
    is_too_large = declared is not None and declared > max_bytes
    # Read at most one byte past the limit: enough to know, never the whole flood.
    try:
        body = b"" if is_too_large else request.stream.read(max_bytes + 1)
    except OSError as error:
        # The server's receive timeout (config/gunicorn.conf.py): the client stopped
        # sending mid-body. Nothing complete arrived, so there is no delivery to keep.
        log.info("request body not received in time: %s", type(error).__name__)
        raise RequestTimeout(
            "The request body did not arrive in time; send the whole body at once."
        ) from error
    if len(body) > max_bytes:
        is_too_large = True
    return inbound_from(
        request.environ,
        request.args.get("integrationId") or None,
        None if is_too_large else body,
        content_length=declared if declared is not None else len(body),
        is_too_large=is_too_large,
        size_unknown=declared is None and is_too_large,
    )


def inbound_from(
    environ: dict[str, Any],
    integration_id: str | None,
    body: bytes | None,
    content_length: int,
    is_too_large: bool = False,
    size_unknown: bool = False,
) -> InboundDelivery:
    """The delivery as its request came: the headers read from the WSGI environ (as
    Flask's request.headers reads them), the body as read by the caller."""
    return InboundDelivery(
        integration_id=integration_id,
        body=body,
        received_at=datetime.now(UTC),
        content_length=content_length,
        size_unknown=size_unknown,
        content_type=environ.get("CONTENT_TYPE"),
        request_id=environ.get("HTTP_REQUEST_ID"),
        hook_resource=environ.get("HTTP_SENTRY_HOOK_RESOURCE"),
        hook_timestamp=environ.get("HTTP_SENTRY_HOOK_TIMESTAMP"),
        signature=environ.get("HTTP_SENTRY_HOOK_SIGNATURE"),
        user_agent=environ.get("HTTP_USER_AGENT"),
        client_address=environ.get("REMOTE_ADDR"),
        is_too_large=is_too_large,
    )


# Sentry only ever POSTs here. Without a GET of its own, a GET of the webhook URL (a
# browser, a curious person) would reach GET /api/integrations/<id> and be told to bring an
# API token, which sends them the wrong way. strict_slashes=False: with a trailing slash too.
@blueprint.get("/api/integrations/sentry", strict_slashes=False)
@documented(
    summary="Not readable: Sentry POSTs deliveries to this URL (405, Allow: POST)",
    tag="webhooks",
    response=ErrorSchema,
    status=405,
)
def sentry_webhook_not_readable() -> Response:
    response = error_response(
        405,
        "method_not_allowed",
        "This is the bridge's Sentry webhook URL: Sentry POSTs alert deliveries here, and "
        "there is nothing to read with GET. Set this URL as the Webhook URL of a Sentry "
        "integration, or POST a JSON alert to it.",
    )
    response.headers["Allow"] = "POST"
    return response


@blueprint.post("/api/integrations/sentry", strict_slashes=False)
@documented(
    summary="Receive a Sentry delivery (integration webhook, issue or event payload)",
    tag="webhooks",
    query=WebhookQuerySchema,
    response=IngestResultSchema,
    status=202,
    errors=(400, 401, 403, 404, 408, 413, 415, 429, 503),
    description="Sign with Sentry-Hook-Signature (hex HMAC-SHA256 of the raw body) when "
    "the integration has a secret. Every delivery is stored with its decision.",
)
def receive_sentry() -> Response:
    app_bridge = bridge()
    settings = app_bridge.settings
    arrived = arrived_at(request.environ)
    inbound = _read_inbound(settings.max_body_bytes)
    early = request.environ.get(SPOOLED_FIRST_KEY)
    if isinstance(early, SpooledFirst):
        # Decided before Flask (app/web/spool_first.py) and handed here to answer.
        budget = early.limited if early.spent else _spool_budget(inbound)
        return _kept(inbound, budget, early.reason)
    database = app_bridge.database
    if database.outage.is_tripped:
        # A delivery moments ago found the database not answering; until the probe sees
        # it back, waiting for the same failure would outlast Sentry's patience.
        return _kept(inbound, _spool_budget(inbound), OUTAGE_REASON)
    admission = admission_for(current_app)
    with admission.slot(arrived, backlog=listen_backlog(request.environ)) as admitted:
        if not admitted.ok:
            # Overload: this worker already applies all it may, and this delivery would
            # start too late for Sentry's one second. Kept like during an outage.
            return _kept(inbound, _spool_budget(inbound), BUSY_REASON)
        try:
            # Whatever is left of the sender's second, less the time to answer: past it
            # the transaction is cancelled and the delivery spooled, not answered late.
            left = arrived + admission.deadline_seconds - _ANSWER_MARGIN_SECONDS - time.time()
            return _apply(inbound, time.monotonic() + left)
        finally:
            admission.answered(arrived, spooled=bool(g.get("delivery_spooled")))


def admission_for(app: Flask) -> AdmissionControl:
    """This worker process's admission control (one per app, made at first use)."""
    found = app.extensions.get("bridge_admission")
    if found is None:
        settings = app.extensions["bridge"].settings
        found = app.extensions.setdefault(
            "bridge_admission",
            AdmissionControl(
                settings.apply_slots,
                settings.admission_wait_ms / 1000,
                deadline_seconds=settings.sender_deadline_ms / 1000,
                max_backlog=settings.admission_backlog,
            ),
        )
    assert isinstance(found, AdmissionControl)
    return found


def _group_commit() -> GroupCommit:
    """This worker process's group committer (one per app, made at first use)."""
    found = current_app.extensions.get("bridge_group_commit")
    if found is None:
        found = current_app.extensions.setdefault(
            "bridge_group_commit", GroupCommit(bridge().database)
        )
    assert isinstance(found, GroupCommit)
    return found


def receivers_for(app: Flask) -> ReceiverCache:
    """This worker process's copy of the integrations (one per app, made at first use)."""
    found = app.extensions.setdefault("bridge_receivers", ReceiverCache())
    assert isinstance(found, ReceiverCache)
    return found


def _apply(inbound: InboundDelivery, deadline_at: float) -> Response:
    app_bridge = bridge()
    settings = app_bridge.settings
    database = app_bridge.database
    receivers = receivers_for(current_app)
    # Read (HMAC, JSON) and rate-limited with this worker's copy of the integration before
    # the transaction: no lock is held meanwhile, and on PostgreSQL the delivery's row and
    # its claims then go out as one statement, which checks the copy (receiver_cache.py).
    read = _prepared(inbound)
    # A limited one takes the ordinary path, which records the refusal (429).
    prepared = read if isinstance(read, Prepared) else None

    def apply(session: Session) -> IngestOutcome:
        outcome = ingest_delivery(
            session,
            inbound,
            app_bridge.secrets,
            settings.max_body_bytes,
            limits=rate_limits().deliveries,
            answer_status=answer_status,
            prepared=prepared,
            receivers=receivers,
        )
        # A refusal commits whatever the time (its record only; the drain would apply
        # it, unlimited, if it were spooled instead). Raised inside the work, so only
        # this delivery is rolled back (its savepoint, in a SQLite group commit).
        if outcome.error is None and time.monotonic() > deadline_at - _COMMIT_RESERVE_SECONDS:
            raise _TooLateToCommit
        return outcome

    # The edge's one transaction, and what happens when it cannot be had: this is fault
    # handling (where to keep the delivery), not the choice of an error response.
    # On SQLite the transaction is shared with the deliveries of this worker waiting for the
    # write lock at the same time (app/store/group_commit.py); answered after its COMMIT.
    try:
        outcome = _group_commit().run(
            apply, settings.database_delivery_timeout_ms / 1000, deadline_at
        )
    except Exception as error:
        if isinstance(error, _TooLateToCommit):
            spooled_before_commit()
            return _kept(inbound, read, BUSY_REASON)
        if is_busy(error):
            # The database answers, but the delivery waited past its deadline (a row lock
            # another delivery of the same issue holds, slow work): keep this one, and
            # let the next ones try, the database is not down.
            spooled_for_lock_wait()
            return _kept(inbound, read, BUSY_REASON)
        if is_unavailable(error):
            # The database is unreachable: keep the delivery on local disk, fsync'd, and
            # say so; the jobs process applies it, in order, when the database returns.
            database.outage.trip()
            return _kept(inbound, read, OUTAGE_REASON)
        if isinstance(error, BridgeError):
            # Refused before there was an integration to record it against (no or an
            # unknown integrationId): the code says which, as for every refusal.
            log.info("delivery refused code=%s status=%s", error.code, answer_status(error.code))
        else:
            # Anything unexpected rolled the transaction back: keep the delivery anyway.
            _keep_failed(inbound, error)
        raise
    # The integration id is a credential for unsigned integrations: log a prefix only.
    log.info(
        "delivery %s integration=%s… action=%s key=%s status=%s code=%s",
        outcome.delivery.id,
        outcome.delivery.integration_id[:6],
        outcome.action,
        outcome.dedup_key,
        outcome.http_status,
        outcome.code or "-",
    )
    # The status was computed once, by answer_status, while the delivery was recorded.
    g.webhook_outcome = outcome.label
    if outcome.error is not None:
        return refusal_response(outcome.error, outcome.http_status)
    response = jsonify(_result_schema.dump(outcome))
    response.status_code = outcome.http_status
    return response


OUTAGE_REASON = (
    "The database is unavailable; the delivery is kept on disk and will be applied, in "
    "order, as soon as it returns."
)
BUSY_REASON = (
    "The bridge is busy; the delivery is kept on disk and will be applied, in order, "
    "within moments."
)


class _SpoolNotes:
    """At most one log line a second for spooled deliveries, with how many since the last.

    Under overload a line per spooled delivery was a write under the log handler's lock on
    the cheap path, shared by every thread of the worker (14 % of its samples waited
    there); the exact counts are bridge_admissions_total and bridge_deliveries_total.
    """

    def __init__(
        self, interval_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval_seconds = interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._count = 0
        self._last = -interval_seconds

    def note(self, spool_id: str) -> None:
        now = self._clock()
        with self._lock:
            self._count += 1
            if now - self._last < self.interval_seconds:
                return
            count, self._count, self._last = self._count, 0, now
        log.warning(
            "database unavailable or busy: %d deliveries spooled since the last such line "
            "(latest %s)",
            count,
            spool_id,
        )


spool_notes = _SpoolNotes()


def _prepared(inbound: InboundDelivery) -> Prepared | Limited | None:
    """The delivery read with this worker's copy of its integration, its budget spent."""
    app_bridge = bridge()
    return prepare_delivery(
        inbound,
        receivers_for(current_app),
        app_bridge.secrets,
        app_bridge.settings.max_body_bytes,
        rate_limits().deliveries,
    )


def _spool_budget(inbound: InboundDelivery) -> Limited | None:
    """A delivery about to be spooled: Limited if it is past its integration's limit
    (checked by its HMAC only, receiver_cache.spend_spool_budget)."""
    app_bridge = bridge()
    return spend_spool_budget(
        inbound,
        receivers_for(current_app),
        app_bridge.secrets,
        app_bridge.settings.max_body_bytes,
        rate_limits().deliveries,
    )


def _kept(inbound: InboundDelivery, read: Prepared | Limited | None, reason: str) -> Response:
    """Keep the delivery in the spool. One past its integration's rate limit is answered
    429, as it would have been applied, and spooled to be stored refused, never applied:
    the limit holds whether the database can take the delivery now or not. (Without a
    copy of the integration nothing can tell a genuine delivery from a forged one: it is
    spooled unlimited rather than let forgeries spend the integration's budget.)"""
    spool = bridge().spool
    if not isinstance(read, Limited):
        return _spooled(spool_delivery(spool, inbound), reason)
    error = read.error
    status = answer_status(error.code)
    refusal = SpooledRefusal(error.code, error.message, status, read.findings.columns())
    spool_id = spool_delivery(spool, inbound, refusal)
    spool_notes.note(spool_id)
    g.delivery_spooled = True
    g.webhook_outcome = error.code
    return refusal_response(error, status)


def _spooled(spool_id: str, reason: str = OUTAGE_REASON) -> Response:
    spool_notes.note(spool_id)
    g.delivery_spooled = True
    g.webhook_outcome = "spooled"
    response = jsonify(spooled_document(spool_id, reason))
    response.status_code = 202
    return response


def spooled_document(spool_id: str, reason: str) -> dict[str, Any]:
    """The answer to a delivery kept in the spool (the same fields as an applied one's)."""
    return {
        "action": "spooled",
        "dedup_key": None,
        "matched": False,
        "incident": None,
        "reason": reason,
        "delivery_id": None,
        "spool_id": spool_id,
    }


def _keep_failed(inbound: InboundDelivery, error: Exception) -> None:
    try:
        with bridge().database.transaction() as session:
            record_failed_delivery(session, inbound, 500, f"{type(error).__name__}")
    except Exception:
        log.exception("could not record the failed delivery either")
