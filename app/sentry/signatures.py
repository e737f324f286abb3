"""Sentry's webhook signature: lowercase hex HMAC-SHA256 of the raw body, keyed by the secret."""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: str, body: bytes) -> str:
    """The signature Sentry would send for these exact bytes."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def is_valid_signature(secret: str, body: bytes, signature: str) -> bool:
    """Constant-time check of a received signature over the bytes exactly as received."""
    expected = sign(secret, body)
    received = signature.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected.encode("ascii"), received)
