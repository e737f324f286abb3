"""Rate-limit counters shared by every gunicorn worker on one host: a small SQLite file.

Kept out of the main database on purpose: a per-request write to an integration's row
would serialise a whole alert storm on that one row (and on PostgreSQL add a round trip
to every delivery). The file lives in the instance folder; the read-decide-write of one
key is a single upsert statement, atomic across processes (SQLite's write lock), in WAL
mode with synchronous=NORMAL: no fsync per request, and a process crash loses nothing.
synchronous=OFF measured no faster here (docs/benchmarks.md) and could corrupt the file
on power loss, after which every check would fail open: not worth it.

The algorithm is GCRA (a token bucket kept as one number per key, the "theoretical
arrival time"): `limit` requests may arrive at once, then one more every
`period / limit` seconds. Unlike a fixed window it never lets 2 x limit through around a
window boundary, and the answer for a burst does not depend on when the burst started.
Keys are hashed: the integration id is the credential of unsigned integrations.

Leases (issue 17): with 4 workers x 32 threads the file's write lock was 16 % of ingest
time on PostgreSQL. A process therefore takes up to `lease_size(limit)` requests from a
bucket in one upsert and hands them to its threads from memory for up to LEASE_SECONDS;
most requests never touch the file. Every admitted request was still counted in the file,
so a burst never exceeds the limit; the slack is that a lease taken up to LEASE_SECONDS
before its requests arrive counts them early: over any window at most
`limit * LEASE_SECONDS / period` (under 1 % of a minute's limit) more than GCRA alone, and
a bucket may refuse while another process still holds unused leased requests (expired
leases are simply lost, which only ever refuses sooner). Limits under LEASE_DIVISOR a
period take one request at a time: exact, as before.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS buckets (key TEXT PRIMARY KEY, tat REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS buckets_tat ON buckets (tat)",
)
BUSY_TIMEOUT_SECONDS = 5.0
_PRUNE_EVERY_SECONDS = 1.0
# GCRA in one statement: a new bucket starts at now; an existing one moves on from
# max(tat, now) by one interval, unless that is more than the period ahead (refused: no
# row returned, nothing changed). ?1 key, ?2 now, ?3 interval, ?4 period.
_TAKE = (
    "INSERT INTO buckets (key, tat) VALUES (?1, ?2 + ?3) "
    "ON CONFLICT (key) DO UPDATE SET tat = max(buckets.tat, ?2) + ?3 "
    "WHERE max(buckets.tat, ?2) + ?3 - ?2 <= ?4 "
    "RETURNING tat"
)
_TAT = "SELECT tat FROM buckets WHERE key = ?"
# A lease is at most this many requests, at most 1/LEASE_DIVISOR of the limit, and is
# used for at most LEASE_SECONDS after it was taken.
LEASE_MAX = 32
LEASE_DIVISOR = 200
LEASE_SECONDS = 0.5


def lease_size(limit: int) -> int:
    """How many requests of a bucket of `limit` one process takes from the file at once."""
    return max(1, min(LEASE_MAX, limit // LEASE_DIVISOR))


@dataclass
class _Lease:
    """Requests of one bucket this process took from the file and has not used yet."""

    left: int
    until: float
    shape: tuple[int, float]

    def serves(self, shape: tuple[int, float], now: float) -> bool:
        """Whether a request of a bucket of this shape may come from the lease at `now`."""
        return self.left > 0 and now < self.until and shape == self.shape


@dataclass(frozen=True)
class Verdict:
    """Whether one request is admitted; if not, how long until one would be."""

    is_allowed: bool
    retry_after_seconds: int = 0


class LimitStore(Protocol):
    """Where the limiters count: this file (one host) or Redis (every node, shared_limits)."""

    @property
    def label(self) -> str:
        """What to name in a log line: a path, or a URL without its password."""
        ...

    def acquire(self, key: str, limit: int, period_seconds: float, now: float) -> Verdict: ...

    def clear(self, key: str, limit: int = 0, period_seconds: float = 0.0) -> None: ...

    def problem(self) -> str | None:
        """Why the limits cannot be checked now (reported by /readyz), or None."""
        ...

    def close(self) -> None: ...


class RateLimitStore:
    """GCRA buckets in a SQLite file, one connection per process and thread, and this
    process's leases of them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._pruned_at = -math.inf
        # One lock per process for the leases: a thread that finds none takes the next from
        # the file while the others wait here (cheap), not at the file's lock (which backs
        # off in sleeps of milliseconds).
        self._leases: dict[str, _Lease] = {}
        self._leases_pid = os.getpid()
        self._leases_lock = threading.Lock()

    @property
    def label(self) -> str:
        return str(self.path)

    def problem(self) -> str | None:
        return None  # a file that cannot be used fails open per request, and logs it

    def _connection(self) -> sqlite3.Connection:
        # A connection must not cross a fork (gunicorn) nor a thread (sqlite3's rule).
        held: tuple[int, sqlite3.Connection] | None = getattr(self._local, "held", None)
        if held is not None and held[0] == os.getpid():
            return held[1]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=True
        )
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            connection.execute(statement)
        self._local.held = (os.getpid(), connection)
        return connection

    def acquire(self, key: str, limit: int, period_seconds: float, now: float) -> Verdict:
        """Take one request from the bucket `key` (`limit` per `period_seconds`) at `now`:
        from this process's lease of the bucket, else from the file (module docstring)."""
        hashed = hash_key(key)
        size = lease_size(limit)
        if size == 1:
            return self._take(hashed, limit, period_seconds, now, 1)
        with self._leases_lock:
            if self._leases_pid != os.getpid():  # leases do not cross a fork (gunicorn)
                self._leases, self._leases_pid = {}, os.getpid()
            lease = self._leases.get(hashed)
            if lease is not None and lease.serves((limit, period_seconds), now):
                lease.left -= 1
                return Verdict(True)
            verdict = self._take(hashed, limit, period_seconds, now, size)
            if verdict.is_allowed:
                self._leases[hashed] = _Lease(
                    size - 1, now + LEASE_SECONDS, (limit, period_seconds)
                )
                return verdict
            # Not a whole lease left in the bucket: maybe one request still is.
            self._leases.pop(hashed, None)
            return self._take(hashed, limit, period_seconds, now, 1)

    def _take(
        self, hashed: str, limit: int, period_seconds: float, now: float, count: int
    ) -> Verdict:
        """Take `count` requests from the file's bucket at once, or none.

        One statement, atomic on its own (an autocommitted upsert that changes the bucket
        only if the requests fit): BEGIN, SELECT, write and COMMIT would each cost a call
        and a turn at the file's write lock."""
        interval = period_seconds / limit
        connection = self._connection()
        admitted = connection.execute(_TAKE, (hashed, now, interval * count, period_seconds + 1e-9))
        # fetchall: the statement (and its implicit transaction) ends only once read out.
        if admitted.fetchall():
            self._prune(connection, now)
            return Verdict(True)
        row = connection.execute(_TAT, (hashed,)).fetchone()
        tat = max(row[0] if row else now, now)
        wait = tat + interval - period_seconds - now
        return Verdict(False, max(1, math.ceil(wait)))

    def _prune(self, connection: sqlite3.Connection, now: float) -> None:
        # A bucket whose time has passed is the same as no bucket: keep the file small, in
        # a sweep at most once a second per process rather than a write per request (two
        # threads racing past the check both sweep: harmless).
        if now - self._pruned_at < _PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = now
        connection.execute("DELETE FROM buckets WHERE tat < ?", (now,))

    def clear(self, key: str, limit: int = 0, period_seconds: float = 0.0) -> None:
        """Forget the bucket `key` (e.g. after a successful login); one bucket per key here."""
        hashed = hash_key(key)
        with self._leases_lock:
            self._leases.pop(hashed, None)
        self._connection().execute("DELETE FROM buckets WHERE key = ?", (hashed,))

    def close(self) -> None:
        held: tuple[int, sqlite3.Connection] | None = getattr(self._local, "held", None)
        if held is not None and held[0] == os.getpid():
            held[1].close()
        self._local.held = None


def hash_key(key: str) -> str:
    """Keys are stored hashed: an integration id is the credential of unsigned integrations."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
