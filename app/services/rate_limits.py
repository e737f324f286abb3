"""Who may go on: deliveries per integration, login attempts per email and address."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from app.domain.errors import RateLimited
from app.store.rate_limits import RateLimitStore, Verdict

log = logging.getLogger(__name__)


def _acquire(store: RateLimitStore, key: str, limit: int, period: float, now: datetime) -> Verdict:
    try:
        return store.acquire(key, limit, period, now.timestamp())
    except Exception:
        # The limiter guards the bridge; it must never be why an alert is lost. A broken
        # counter file (disk full, removed) admits and says so in the log.
        log.exception("rate-limit store %s failed; admitting the request", store.path)
        return Verdict(True)


@dataclass(frozen=True)
class DeliveryRateLimit:
    """At most `per_minute` deliveries a minute per integration, shared by all workers."""

    store: RateLimitStore
    per_minute: int

    def admit(self, integration_id: str, now: datetime) -> None:
        """Count one delivery for the integration, or raise RateLimited."""
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


@dataclass(frozen=True)
class LoginRateLimit:
    """At most `attempts` failed logins per email and client address per `window_seconds`."""

    store: RateLimitStore
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
            self.store.clear(self._key(email, address))
        except Exception:
            log.exception("rate-limit store %s failed to clear a login bucket", self.store.path)

    @staticmethod
    def _key(email: str, address: str | None) -> str:
        return f"login:{email.strip().lower()}|{address or '-'}"


def _minutes(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
