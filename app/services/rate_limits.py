"""Who may go on: deliveries per integration, login attempts per email and address."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from app.domain.errors import RateLimited
from app.store.rate_limits import LimitStore, Verdict

log = logging.getLogger(__name__)


def _acquire(store: LimitStore, key: str, limit: int, period: float, now: datetime) -> Verdict:
    try:
        return store.acquire(key, limit, period, now.timestamp())
    except Exception:
        # The limiter guards the bridge; it must never be why an alert is lost. A broken
        # counter file (disk full, removed) admits and says so in the log. (The Redis
        # store fails open by itself, logging once per outage: app/store/shared_limits.py.)
        log.exception("rate-limit store %s failed; admitting the request", store.label)
        return Verdict(True)


@dataclass(frozen=True)
class DeliveryRateLimit:
    """Deliveries a minute, shared by all workers (and nodes, with Redis), in three buckets.

    Applied deliveries: `per_minute` per integration. Refused ones (bad or missing
    signature, disabled integration, unreadable body...): `refused_per_minute` per
    integration, a bucket of their own, so a flood of forgeries against an integration's
    id never spends the budget of its genuine deliveries. Unknown integration ids:
    `unknown_per_minute` per client address (guessing ids). 0 turns a bucket off.
    """

    store: LimitStore
    per_minute: int
    refused_per_minute: int = 0
    unknown_per_minute: int = 0

    def admit(self, integration_id: str, now: datetime) -> None:
        """Count one delivery about to be applied, or raise RateLimited."""
        if self.per_minute <= 0:
            return
        verdict = _acquire(self.store, f"delivery:{integration_id}", self.per_minute, 60.0, now)
        if not verdict.is_allowed:
            raise RateLimited(
                f"This integration sent more than {self.per_minute} deliveries a minute, the "
                f"limit this bridge is configured with (BRIDGE_RATE_LIMIT_PER_MINUTE). The "
                f"delivery was recorded but not applied; retry after "
                f"{verdict.retry_after_seconds} s.",
                retry_after=verdict.retry_after_seconds,
                limit_per_minute=self.per_minute,
            )

    def admit_refused(self, integration_id: str, now: datetime) -> None:
        """Count one refused delivery of the integration; RateLimited past its own limit."""
        if self.refused_per_minute <= 0:
            return
        verdict = _acquire(
            self.store, f"refused:{integration_id}", self.refused_per_minute, 60.0, now
        )
        if not verdict.is_allowed:
            raise RateLimited(
                f"This integration was sent more than {self.refused_per_minute} deliveries a "
                f"minute that had to be refused (BRIDGE_REFUSED_RATE_LIMIT_PER_MINUTE); this "
                f"one was refused too. Correctly signed deliveries are counted apart and are "
                f"not affected. Retry after {verdict.retry_after_seconds} s.",
                retry_after=verdict.retry_after_seconds,
                limit_per_minute=self.refused_per_minute,
            )

    def admit_unknown(self, address: str | None, now: datetime) -> None:
        """Count one delivery for an unknown integration id from `address`, or raise."""
        if self.unknown_per_minute <= 0:
            return
        key = f"unknown:{address or '-'}"
        verdict = _acquire(self.store, key, self.unknown_per_minute, 60.0, now)
        if not verdict.is_allowed:
            raise RateLimited(
                f"More than {self.unknown_per_minute} deliveries a minute from this address "
                f"named no known integration (BRIDGE_UNKNOWN_RATE_LIMIT_PER_MINUTE). Check the "
                f"webhook URL; retry after {verdict.retry_after_seconds} s.",
                retry_after=verdict.retry_after_seconds,
                limit_per_minute=self.unknown_per_minute,
            )


@dataclass(frozen=True)
class LoginRateLimit:
    """At most `attempts` failed logins per email and client address per `window_seconds`."""

    store: LimitStore
    attempts: int
    window_seconds: int

    def refusal(self, email: str, address: str | None, now: datetime) -> RateLimited | None:
        """Count one login attempt (a success forgets them); the refusal when over the limit."""
        if self.attempts <= 0:
            return None
        verdict = _acquire(
            self.store, self._key(email, address), self.attempts, self.window_seconds, now
        )
        if verdict.is_allowed:
            return None
        return RateLimited(
            f"Too many failed logins for this account from this address. Try again in "
            f"{_minutes(verdict.retry_after_seconds)}.",
            retry_after=verdict.retry_after_seconds,
        )

    def forget(self, email: str, address: str | None) -> None:
        """A successful login clears the failures counted against it."""
        try:
            self.store.clear(self._key(email, address), self.attempts, self.window_seconds)
        except Exception:
            log.exception("rate-limit store %s failed to clear a login bucket", self.store.label)

    @staticmethod
    def _key(email: str, address: str | None) -> str:
        return f"login:{email.strip().lower()}|{address or '-'}"


def _minutes(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
