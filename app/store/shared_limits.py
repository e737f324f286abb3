"""Rate-limit counters shared by every node: Redis, through the `limits` library.

Chosen with BRIDGE_RATE_LIMIT_URL=redis://...; without it each host keeps its own
counters in a file (app/store/rate_limits.py). The strategy is limits' moving window:
at most `limit` requests in any `period` seconds, never 2 x limit around a boundary,
counted atomically in Redis by the library's own scripts, so N nodes together admit
exactly the limit. Keys are hashed as in the file store (the integration id is the
credential of unsigned integrations) and put under a prefix of their own.

When Redis cannot be reached the store admits (fails open): a limiter must never be why
an alert is lost. It says so once per outage in the log, counts every admission it could
not check in `bridge_rate_limit_unchecked_total`, and reports the problem to /readyz
(without making the node unready). After a failure it does not try Redis again for a
few seconds, so a dead Redis costs a delivery nothing, a hung one at most one timeout.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from urllib.parse import urlsplit

from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import Counter

from app.store.rate_limits import Verdict, hash_key

log = logging.getLogger(__name__)

# A delivery waits at most this long for Redis (Sentry waits one second for the answer).
REDIS_TIMEOUT_SECONDS = 0.25
# After a failure, Redis is left alone (every request admitted) this long.
RETRY_AFTER_FAILURE_SECONDS = 5.0

UNCHECKED = Counter(
    "bridge_rate_limit_unchecked_total",
    "Requests admitted without a rate-limit check because the shared store was unreachable.",
)


class RedisRateLimitStore:
    """Moving-window buckets in Redis, shared by every process of every node."""

    def __init__(
        self,
        url: str,
        key_prefix: str = "bridge",
        timeout_seconds: float = REDIS_TIMEOUT_SECONDS,
    ) -> None:
        self.label = _without_password(url)
        self._storage = RedisStorage(
            url,
            key_prefix=f"{key_prefix}:limits",
            socket_connect_timeout=timeout_seconds,
            socket_timeout=timeout_seconds,
        )
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._problem: str | None = None

    def acquire(self, key: str, limit: int, period_seconds: float, now: float) -> Verdict:
        """Take one request from the bucket `key` (`limit` per `period_seconds`).

        `now` is not used: the window is kept by the library on this host's clock (the
        file store takes it for tests that step through time).
        """
        if self._is_resting():
            UNCHECKED.inc()
            return Verdict(True)
        item = self._item(limit, period_seconds)
        hashed = hash_key(key)
        try:
            if self._limiter.hit(item, hashed):
                verdict = Verdict(True)
            else:
                reset_at, _remaining = self._limiter.get_window_stats(item, hashed)
                wait = reset_at - time.time()
                verdict = Verdict(False, max(1, math.ceil(wait)))
        except Exception as error:
            self._failed(error)
            UNCHECKED.inc()
            return Verdict(True)
        self._recovered()
        return verdict

    def clear(self, key: str, limit: int = 0, period_seconds: float = 0.0) -> None:
        """Forget the bucket `key` of `limit` per `period_seconds` (a login that succeeded)."""
        if self._is_resting() or limit <= 0:
            return
        try:
            self._limiter.clear(self._item(limit, period_seconds), hash_key(key))
        except Exception as error:
            self._failed(error)

    def problem(self) -> str | None:
        """Why the limits are not being checked now, or None when Redis answers."""
        if self._is_resting():
            return self._problem
        try:
            self._storage.get_connection().ping()
        except Exception as error:
            self._failed(error)
            return self._problem
        self._recovered()
        return None

    def close(self) -> None:
        """Nothing to do: the library's client keeps a pool and closes it with the process."""

    @staticmethod
    def _item(limit: int, period_seconds: float) -> RateLimitItemPerSecond:
        return RateLimitItemPerSecond(limit, max(1, round(period_seconds)))

    def _is_resting(self) -> bool:
        return time.monotonic() < self._down_until

    def _failed(self, error: Exception) -> None:
        with self._lock:
            was_up = self._problem is None
            self._problem = (
                f"{self.label} unreachable ({type(error).__name__}): rate limits are not "
                "checked, every request is admitted"
            )
            self._down_until = time.monotonic() + RETRY_AFTER_FAILURE_SECONDS
        if was_up:
            log.warning(
                "rate-limit store %s failed: %s; admitting every request", self.label, error
            )

    def _recovered(self) -> None:
        if self._problem is None:
            return
        with self._lock:
            was_down, self._problem = self._problem is not None, None
        if was_down:
            log.warning("rate-limit store %s answers again; limits are checked", self.label)


def _without_password(url: str) -> str:
    """The URL to name in logs and /readyz: scheme, host, port and database only."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
