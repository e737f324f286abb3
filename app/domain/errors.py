"""The bridge's one exception hierarchy. It names conditions; app/web maps them to HTTP."""

from __future__ import annotations

from typing import Any


class BridgeError(Exception):
    """Base of every condition the bridge reports to a caller."""

    code = "bridge_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class IntegrationIdMissing(BridgeError):
    code = "integration_id_missing"


class IntegrationNotFound(BridgeError):
    code = "integration_not_found"


class IntegrationDisabled(BridgeError):
    code = "integration_disabled"


class SignatureMissing(BridgeError):
    code = "signature_missing"


class SignatureMismatch(BridgeError):
    code = "signature_mismatch"


class PayloadTooLarge(BridgeError):
    code = "payload_too_large"


class UnsupportedContentType(BridgeError):
    code = "unsupported_content_type"


class MalformedJson(BridgeError):
    code = "malformed_json"


class UnrecognisedPayload(BridgeError):
    code = "unrecognised_payload"


class NotFound(BridgeError):
    code = "not_found"


class InvalidInput(BridgeError):
    code = "invalid_input"


class Conflict(BridgeError):
    code = "conflict"


class AuthenticationRequired(BridgeError):
    code = "authentication_required"


class InvalidCredentials(BridgeError):
    code = "invalid_credentials"


class Forbidden(BridgeError):
    code = "forbidden"


class IllegalTransition(Conflict):
    code = "illegal_transition"


class DeliveryNotKept(BridgeError):
    """The database is unreachable and the local spool could not keep the delivery either."""

    code = "delivery_not_kept"


class RateLimited(BridgeError):
    """Too many requests; `retry_after` (whole seconds) says when one will be admitted."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.retry_after = retry_after
