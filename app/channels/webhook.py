"""Signed webhooks: the notification document POSTed as JSON, per Standard Webhooks.

Standard Webhooks (standardwebhooks.com, spec v1): headers `webhook-id` (our
notification id, so a receiver can drop a repeat), `webhook-timestamp` (integer unix
seconds) and `webhook-signature: v1,<base64 HMAC-SHA256>` over `{id}.{timestamp}.{body}`,
keyed with the base64-decoded part of the `whsec_` secret. The body sent is exactly
the bytes signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time

from app.channels import http
from app.channels.base import ChannelSettings, ChannelTarget, Message, SendResult
from app.channels.scrub import scrub, target_secrets

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a credential
SECRET_BYTES = 32


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret; ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the part after whsec_ is not base64") from None
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def body_bytes(message: Message) -> bytes:
    return json.dumps(message.document, separators=(",", ":"), ensure_ascii=False).encode()


def signature(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret_key(secret), webhook_id, timestamp, body),
    }


def send(target: ChannelTarget, message: Message, settings: ChannelSettings) -> SendResult:
    if not target.url:
        return SendResult("failed", error="the webhook channel has no URL")
    if not target.secret:
        return SendResult("failed", error="the webhook channel has no signing secret")
    body = body_bytes(message)
    try:
        # The signing time is the sending time: a retry is signed afresh, so receivers
        # that reject old timestamps (the spec suggests 5 minutes) still accept it.
        headers = signed_headers(target.secret, message.notification_id, int(time.time()), body)
    except ValueError as unusable:
        return SendResult("failed", error=f"the webhook signing secret is unusable: {unusable}")
    answer = http.post(target.url, body, headers, settings.timeout_seconds)
    if isinstance(answer, SendResult):
        return answer
    outcome = http.outcome_for_status(answer.status_code)
    error: str | None = None
    if outcome != "sent":
        excerpt = scrub(answer.text, target_secrets(target))
        error = f"receiver answered HTTP {answer.status_code}" + (f": {excerpt}" if excerpt else "")
        if 300 <= answer.status_code < 400:
            error = f"receiver answered HTTP {answer.status_code} (redirects are not followed)"
    return SendResult(
        outcome,
        status_code=answer.status_code,
        error=error,
        retry_after_seconds=answer.retry_after_seconds if outcome == "retry" else None,
    )
