"""The checks that may refuse a delivery, in order: a function of the request and the
integration alone (no database: the receiver was read with the delivery's record)."""

from __future__ import annotations

from typing import Any

from app.domain.alerts import Alert, read_alert
from app.domain.errors import (
    IntegrationDisabled,
    PayloadTooLarge,
    SignatureMismatch,
    SignatureMissing,
    UnsupportedContentType,
)
from app.domain.json_body import decode_json
from app.sentry.signatures import signing_secret_index
from app.services.delivery_records import Findings, InboundDelivery, clip
from app.store.encryption import SecretBox
from app.store.receiver_rows import Receiver

# ---------------------------------------------------------------- reading


def read_delivery(
    receiver: Receiver,
    inbound: InboundDelivery,
    secrets: SecretBox,
    max_body_bytes: int,
    findings: Findings,
) -> tuple[Any, Alert]:
    """Everything that may refuse a delivery, in order; the payload and what it says."""
    if not receiver.enabled:
        raise IntegrationDisabled(
            "This integration is disabled in the bridge, so deliveries are recorded but not "
            "applied. An admin can enable it again."
        )
    if inbound.is_too_large or inbound.body is None:
        raise PayloadTooLarge(_too_large_message(inbound, max_body_bytes), limit=max_body_bytes)
    body = inbound.body
    authenticate(receiver, findings, inbound, secrets, body)
    payload = _decode(inbound, body)
    alert = read_alert(payload, inbound.hook_resource)
    findings.format = alert.format.value
    findings.resource = clip(alert.resource, 64)
    findings.action = clip(alert.action, 64)
    findings.dedup_key = clip(alert.dedup_key, 255)
    return payload, alert


def human_size(size: int) -> str:
    """A byte count as people read it: "812 bytes", "64 KB", "2.3 MB" (1 KB = 1024 bytes)."""
    if size < 1024:
        return f"{size} bytes"
    unit, scale = ("KB", 1024) if size < 1024 * 1024 else ("MB", 1024 * 1024)
    return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"


def _too_large_message(inbound: InboundDelivery, max_body_bytes: int) -> str:
    limit = f"limit {human_size(max_body_bytes)} ({max_body_bytes} bytes)"
    if inbound.size_unknown or inbound.content_length is None:
        return (
            f"The body is larger than {human_size(max_body_bytes)} (it came without a "
            f"Content-Length, so its full size is unknown); {limit}."
        )
    return (
        f"The body is {human_size(inbound.content_length)} ({inbound.content_length} bytes); "
        f"{limit}."
    )


def authenticate(
    receiver: Receiver,
    findings: Findings,
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
    previous: str | None = None  # a rotated secret counts until it expires
    if (
        receiver.previous_secret_ciphertext is not None
        and receiver.previous_secret_expires_at is not None
        and inbound.received_at < receiver.previous_secret_expires_at
    ):
        previous = secrets.decrypt(receiver.previous_secret_ciphertext)
    current = secrets.decrypt(receiver.secret_ciphertext)
    # Both candidates are checked (each in constant time); the current secret wins a tie.
    signed_by = signing_secret_index((current, previous), body, inbound.signature)
    if signed_by is not None:
        findings.signature_outcome = ("valid", "valid_previous_secret")[signed_by]
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
