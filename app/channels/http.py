"""One outbound HTTP POST with a timeout, and what its answer means for a retry.

Used by the adapters that speak plain HTTP themselves (webhook, PagerDuty). Slack goes
through slack_sdk and Apprise through its own plugins, but their answers are classified
by the same `outcome_for_status` so every kind retries the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests

from app.channels.base import Outcome, SendResult

USER_AGENT = "sentry-incident-bridge"
# Statuses that say "not now" rather than "never": the receiver is overloaded, down,
# or asks us to slow down. Every other 4xx means the request itself is wrong.
_TRANSIENT_STATUSES = frozenset({408, 425, 429})
# Kept small: a receiver's body is evidence for a person, not something to store.
_ANSWER_CHARS = 2000


class _HideRequestPaths(logging.Filter):
    """urllib3 logs each request line at DEBUG, path included, and a webhook or Slack
    URL's path is its secret. The line keeps its host and status; the path goes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            isinstance(record.args, tuple)
            and len(record.args) == 8
            and '"%s %s %s"' in str(record.msg)
        ):
            args = list(record.args)
            args[4] = "/[redacted]"
            record.args = tuple(args)
        return True


_URLLIB3_LOGGER = logging.getLogger("urllib3.connectionpool")
_PATH_FILTER = _HideRequestPaths()


def _hide_request_paths() -> None:
    if _PATH_FILTER not in _URLLIB3_LOGGER.filters:
        _URLLIB3_LOGGER.addFilter(_PATH_FILTER)


@dataclass(frozen=True)
class HttpAnswer:
    status_code: int
    text: str  # the first _ANSWER_CHARS of the body, not yet scrubbed
    retry_after_seconds: float | None


def outcome_for_status(status_code: int) -> Outcome:
    if 200 <= status_code < 300:
        return "sent"
    if status_code >= 500 or status_code in _TRANSIENT_STATUSES:
        return "retry"
    return "failed"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: either delta-seconds or an HTTP date (RFC 9110)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def transport_failure(error: requests.RequestException, timeout: float) -> SendResult:
    """A request that got no answer. The exception's text is never used: requests puts
    the full URL (with the secret in its path) into it."""
    if isinstance(error, requests.Timeout):
        return SendResult("retry", error=f"no answer within {timeout:g} s (timed out)")
    if isinstance(error, requests.exceptions.SSLError):
        return SendResult("retry", error="TLS handshake with the receiver failed")
    if isinstance(error, requests.ConnectionError):
        refused = "refused" in str(error).lower()
        return SendResult(
            "retry", error="connection refused" if refused else "could not connect to receiver"
        )
    if isinstance(error, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        return SendResult("failed", error="the channel's URL is not usable")
    return SendResult("retry", error=f"request failed ({type(error).__name__})")


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> HttpAnswer | SendResult:
    """POST `body` as is; an answer of any status, or a SendResult when there was none.

    Redirects are not followed: a signed delivery must reach the URL it was configured
    for, and a 3xx (reported as a failure) is a configuration problem to fix.
    """
    _hide_request_paths()
    try:
        response = requests.post(
            url,
            data=body,
            headers={"User-Agent": USER_AGENT, **headers},
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        return transport_failure(error, timeout)
    with response:
        text = response.text[:_ANSWER_CHARS]
    return HttpAnswer(
        status_code=response.status_code,
        text=text,
        retry_after_seconds=parse_retry_after(response.headers.get("Retry-After")),
    )
