"""Conditions met while speaking to Sentry, as the bridge's own exceptions.

They extend the one hierarchy (app.domain.errors.BridgeError); app/web/errors.py maps them
to HTTP statuses. Messages never carry tokens, secrets or grant codes.
"""

from __future__ import annotations

from app.domain.errors import BridgeError, NotFound


class SentryError(BridgeError):
    """Base of everything that went wrong between the bridge and Sentry."""

    code = "sentry_error"


class SentryNotConfigured(SentryError):
    """The bridge lacks a setting (client id, secret, app slug) that this needs."""

    code = "sentry_not_configured"


class SentryUnavailable(SentryError):
    """Sentry did not answer usefully: timeouts, connection errors, 5xx after retries."""

    code = "sentry_unavailable"


class SentryRateLimited(SentryError):
    """Sentry answered 429 for longer than the bridge is willing to wait in place."""

    code = "sentry_rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after=round(retry_after, 3))
        self.retry_after = retry_after


class SentryUnauthorized(SentryError):
    """Sentry refused the token (401), even after one refresh."""

    code = "sentry_unauthorized"


class SentryGrantRejected(SentryError):
    """Sentry refused a grant code or refresh token: used, expired, or not ours."""

    code = "sentry_grant_rejected"


class SentryResourceMissing(SentryError):
    """Sentry answered 404 for an issue, event or installation."""

    code = "sentry_resource_missing"


class SentryRequestRefused(SentryError):
    """Sentry answered another 4xx: the bridge asked for something it may not do."""

    code = "sentry_request_refused"


class SentryBadResponse(SentryError):
    """Sentry answered 2xx with a body the bridge cannot read."""

    code = "sentry_bad_response"


class OAuthStateInvalid(BridgeError):
    """The OAuth `state` of a setup redirect is missing, unknown, used or expired."""

    code = "oauth_state_invalid"


class InstallationNotFound(NotFound):
    code = "installation_not_found"


class UiRequestRefused(BridgeError):
    """A Sentry UI-component request the bridge cannot satisfy; the message is shown in Sentry."""

    code = "ui_request_refused"
