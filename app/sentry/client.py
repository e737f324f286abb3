"""The Sentry REST API client: one requests.Session, a timeout on every call.

429 is honoured (Retry-After, else X-Sentry-Rate-Limit-Reset), 5xx and dropped connections
are retried with exponential backoff, and every failure becomes an exception of
app.sentry.errors. Tokens travel only in the Authorization header and never into a
message or a log line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests

from app.domain.alerts import parse_time
from app.sentry.errors import (
    SentryBadResponse,
    SentryGrantRejected,
    SentryRateLimited,
    SentryRequestRefused,
    SentryResourceMissing,
    SentryUnauthorized,
    SentryUnavailable,
)

log = logging.getLogger(__name__)

USER_AGENT = "sentry-incident-bridge/0.1"


@dataclass(frozen=True)
class TokenGrant:
    """What Sentry's token endpoint gives: a token, its refresh token and its expiry."""

    token: str
    refresh_token: str | None
    expires_at: datetime | None

    def __repr__(self) -> str:  # never print the tokens themselves
        return f"TokenGrant(expires_at={self.expires_at!r})"


def segment(value: str) -> str:
    """One path segment from outside input: no slashes, no dots that climb.

    quote() escapes `/` but leaves `.`, and `%2E` does not help: requests unquotes it
    again and urllib3 folds a `.` or `..` segment away (`/issues/../` is sent as the
    organisation's own path). No Sentry id or slug is empty or all dots, so such a
    segment is answered as Sentry would answer it if it arrived intact: not found.
    """
    text = str(value)
    if text.strip(".") == "":
        raise SentryResourceMissing(f"{text!r} names no Sentry resource; nothing was requested.")
    return quote(text, safe="")


class SentryClient:
    """Calls the Sentry API at `base_url` (sentry.io, a self-hosted Sentry, or a fake)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 3.05,
        max_retries: int = 3,
        backoff_seconds: float = 0.5,
        max_wait_seconds: float = 30.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, timeout)
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_wait_seconds = max_wait_seconds
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.sleep = sleep
        self.clock = clock

    # ------------------------------------------------------------ OAuth (integration platform)

    def exchange_grant(
        self, installation_uuid: str, code: str, client_id: str, client_secret: str
    ) -> TokenGrant:
        """Trade a grant code (single use) for a token pair."""
        return self._authorize(
            installation_uuid,
            {
                "grant_type": "authorization_code",
                "code": code,
                "client_id": client_id,
                "client_secret": client_secret,
            },
        )

    def refresh(
        self, installation_uuid: str, refresh_token: str, client_id: str, client_secret: str
    ) -> TokenGrant:
        """Trade a refresh token for a new pair; Sentry invalidates the old one."""
        return self._authorize(
            installation_uuid,
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": client_id,
                "client_secret": client_secret,
            },
        )

    def verify_installation(self, installation_uuid: str, token: str) -> None:
        """Tell Sentry the installation is complete (status "installed")."""
        self._json(
            "PUT",
            f"/api/0/sentry-app-installations/{segment(installation_uuid)}/",
            token=token,
            json={"status": "installed"},
        )

    def _authorize(self, installation_uuid: str, form: dict[str, str]) -> TokenGrant:
        path = f"/api/0/sentry-app-installations/{segment(installation_uuid)}/authorizations/"
        try:
            # A refresh is not idempotent: a retried one after a lost answer would present
            # an already rotated refresh token. Only answers that say "not done" are retried.
            document = self._json("POST", path, json=form, idempotent=False)
        except (SentryUnauthorized, SentryRequestRefused, SentryResourceMissing) as error:
            raise SentryGrantRejected(
                f"Sentry refused the {form['grant_type'].replace('_', ' ')} for installation "
                f"{installation_uuid} (it is single-use, expires quickly, and must come from "
                "this integration's client id and secret).",
                sentry_status=error.details.get("sentry_status"),
            ) from None
        token = document.get("token")
        if not isinstance(token, str) or not token:
            raise SentryBadResponse("Sentry's token answer has no token.")
        refresh_token = document.get("refreshToken")
        return TokenGrant(
            token=token,
            refresh_token=refresh_token if isinstance(refresh_token, str) else None,
            expires_at=parse_time(document.get("expiresAt")),
        )

    # ------------------------------------------------------------ issues and events

    def get_issue(self, token: str, org_slug: str, issue_id: str) -> dict[str, Any]:
        """GET /api/0/organizations/{org}/issues/{id}/"""
        return self._object(
            "GET", f"/api/0/organizations/{segment(org_slug)}/issues/{segment(issue_id)}/", token
        )

    def get_latest_event(self, token: str, org_slug: str, issue_id: str) -> dict[str, Any]:
        """GET /api/0/organizations/{org}/issues/{id}/events/latest/"""
        return self._object(
            "GET",
            f"/api/0/organizations/{segment(org_slug)}/issues/{segment(issue_id)}/events/latest/",
            token,
        )

    def update_issue_status(
        self, token: str, org_slug: str, issue_id: str, status: str
    ) -> dict[str, Any]:
        """PUT /api/0/organizations/{org}/issues/{id}/ {"status": "resolved" | "ignored"}"""
        return self._object(
            "PUT",
            f"/api/0/organizations/{segment(org_slug)}/issues/{segment(issue_id)}/",
            token,
            json={"status": status},
        )

    # ------------------------------------------------------------ transport

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _object(
        self, method: str, path: str, token: str, json: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        document = self._json(method, path, token=token, json=json)
        return document

    def _json(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        response = self._send(
            method, self._url(path), token=token, json=json, idempotent=idempotent
        )
        document = self._decode(response)
        if not isinstance(document, dict):
            raise SentryBadResponse(f"Sentry answered {method} {path} with a non-object.")
        return document

    @staticmethod
    def _decode(response: requests.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise SentryBadResponse(
                f"Sentry answered {response.status_code} with a body that is not JSON."
            ) from None

    def _send(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        idempotent: bool = True,
    ) -> requests.Response:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        where = f"{method} {url.split('?', 1)[0]}"
        attempt = 0
        while True:
            try:
                response = self.session.request(
                    method, url, headers=headers, json=json, params=params, timeout=self.timeout
                )
            except requests.ConnectTimeout:
                # Nothing reached Sentry: safe to retry even a non-idempotent call.
                if attempt < self.max_retries:
                    self._back_off(attempt, where, "connect timeout")
                    attempt += 1
                    continue
                raise SentryUnavailable(
                    f"Sentry did not accept a connection for {where}."
                ) from None
            except requests.RequestException as error:
                if idempotent and attempt < self.max_retries:
                    self._back_off(attempt, where, type(error).__name__)
                    attempt += 1
                    continue
                raise SentryUnavailable(
                    f"Sentry did not answer {where} ({type(error).__name__})."
                ) from None
            status = response.status_code
            if status == 429:
                wait = self._rate_limit_wait(response)
                if attempt >= self.max_retries or wait > self.max_wait_seconds:
                    raise SentryRateLimited(
                        f"Sentry rate-limited {where}; try again in {wait:.0f} s.", retry_after=wait
                    )
                log.info("sentry rate limit on %s: waiting %.2f s", where, wait)
                self.sleep(wait)
                attempt += 1
                continue
            if status >= 500:
                if attempt < self.max_retries:
                    self._back_off(attempt, where, f"HTTP {status}")
                    attempt += 1
                    continue
                raise SentryUnavailable(
                    f"Sentry answered {where} with {status} after {attempt + 1} attempts.",
                    sentry_status=status,
                )
            if status == 401:
                raise SentryUnauthorized(
                    f"Sentry refused the token for {where} (401).", sentry_status=status
                )
            if status == 404:
                raise SentryResourceMissing(f"Sentry has no {where} (404).", sentry_status=status)
            if status >= 400:
                raise SentryRequestRefused(
                    f"Sentry refused {where} with {status}: {_detail(response)}",
                    sentry_status=status,
                )
            return response

    def _back_off(self, attempt: int, where: str, why: str) -> None:
        delay = min(self.backoff_seconds * (2**attempt), self.max_wait_seconds)
        log.info("retrying %s after %s in %.2f s", where, why, delay)
        self.sleep(delay)

    def _rate_limit_wait(self, response: requests.Response) -> float:
        """Seconds to wait: Retry-After (seconds or HTTP date), else the reset time."""
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                try:
                    when = parsedate_to_datetime(retry_after)
                except (TypeError, ValueError):
                    when = None
                if when is not None:
                    if when.tzinfo is None:
                        when = when.replace(tzinfo=UTC)
                    return max(0.0, when.timestamp() - self.clock())
        reset = response.headers.get("X-Sentry-Rate-Limit-Reset")
        if reset:
            try:
                return max(0.0, float(reset) - self.clock())
            except ValueError:
                pass
        return min(self.backoff_seconds, self.max_wait_seconds)


def _detail(response: requests.Response) -> str:
    try:
        document = response.json()
    except ValueError:
        return "no detail"
    detail = document.get("detail") if isinstance(document, dict) else None
    return str(detail)[:200] if detail else "no detail"
