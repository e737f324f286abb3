"""Sentry's webhook signature: lowercase hex HMAC-SHA256 of the raw body, keyed by the secret."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def sign(secret: str, body: bytes) -> str:
    """The signature Sentry would send for these exact bytes."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def is_valid_signature(secret: str, body: bytes, signature: str) -> bool:
    """Constant-time check of a received signature over the bytes exactly as received."""
    expected = sign(secret, body)
    received = signature.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected.encode("ascii"), received)


def signing_secret_index(secrets: Iterable[str | None], body: bytes, signature: str) -> int | None:
    """Which of several secrets (in order; None or "" for one not set) signed these bytes.

    A webhook's current and previous (rotated) secret, or a UI component's app secret and
    its integration's secret: every candidate is checked, each in constant time.
    """
    found: int | None = None
    for index, secret in enumerate(secrets):
        if secret and is_valid_signature(secret, body, signature) and found is None:
            found = index
    return found
