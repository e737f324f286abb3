"""The rate-limit store: GCRA buckets in a SQLite file shared by processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.domain.errors import RateLimited
from app.services.rate_limits import DeliveryRateLimit, LoginRateLimit
from app.store.rate_limits import LEASE_SECONDS, RateLimitStore, lease_size

T0 = 1_790_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> RateLimitStore:
    return RateLimitStore(tmp_path / "limits.db")


def test_a_burst_of_exactly_the_limit_is_admitted_and_the_next_is_refused(
    store: RateLimitStore,
) -> None:
    verdicts = [store.acquire("k", 20, 60.0, T0) for _ in range(21)]

    assert [v.is_allowed for v in verdicts] == [True] * 20 + [False]
    assert verdicts[-1].retry_after_seconds == 3  # one slot frees every 60/20 seconds


def test_one_slot_frees_every_period_over_limit_seconds(store: RateLimitStore) -> None:
    for _ in range(3):
        assert store.acquire("k", 3, 60.0, T0).is_allowed

    assert not store.acquire("k", 3, 60.0, T0 + 19.9).is_allowed
    assert store.acquire("k", 3, 60.0, T0 + 20.0).is_allowed
    assert not store.acquire("k", 3, 60.0, T0 + 20.0).is_allowed


def test_retry_after_says_when_the_next_request_is_admitted(store: RateLimitStore) -> None:
    for _ in range(5):
        store.acquire("login", 5, 900.0, T0)

    refused = store.acquire("login", 5, 900.0, T0 + 10)

    assert not refused.is_allowed
    assert refused.retry_after_seconds == 170  # 900/5 = 180 s after the burst
    assert store.acquire("login", 5, 900.0, T0 + 10 + refused.retry_after_seconds).is_allowed


def test_refused_requests_do_not_push_the_next_admission_further_away(
    store: RateLimitStore,
) -> None:
    store.acquire("k", 1, 60.0, T0)
    for second in range(1, 59):
        assert not store.acquire("k", 1, 60.0, T0 + second).is_allowed

    assert store.acquire("k", 1, 60.0, T0 + 60).is_allowed


def test_keys_are_counted_apart(store: RateLimitStore) -> None:
    assert store.acquire("a", 1, 60.0, T0).is_allowed
    assert not store.acquire("a", 1, 60.0, T0).is_allowed
    assert store.acquire("b", 1, 60.0, T0).is_allowed


def test_clear_forgets_a_bucket(store: RateLimitStore) -> None:
    store.acquire("k", 1, 60.0, T0)
    store.clear("k")

    assert store.acquire("k", 1, 60.0, T0).is_allowed


def test_the_file_keeps_hashed_keys_and_no_expired_buckets(store: RateLimitStore) -> None:
    store.acquire("delivery:secret-integration-id", 10, 60.0, T0)
    store.acquire("other", 10, 60.0, T0 + 3600)  # long after the first bucket emptied

    rows = sqlite3.connect(store.path).execute("SELECT key FROM buckets").fetchall()
    assert len(rows) == 1
    assert b"secret-integration-id" not in store.path.read_bytes()


def _hammer(path: str, count: int) -> int:
    shared = RateLimitStore(Path(path))
    return sum(shared.acquire("shared", 20, 60.0, T0).is_allowed for _ in range(count))


def test_processes_sharing_the_file_share_one_limit(tmp_path: Path) -> None:
    path = str(tmp_path / "limits.db")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        admitted = pool.starmap(_hammer, [(path, 10)] * 4)

    assert sum(admitted) == 20


def _hammer_leased(path: str, count: int) -> int:
    shared = RateLimitStore(Path(path))
    return sum(shared.acquire("shared", 10_000, 60.0, T0).is_allowed for _ in range(count))


def test_leased_requests_never_let_a_burst_past_the_limit(tmp_path: Path) -> None:
    assert lease_size(10_000) > 1  # this limit is handed out in leases
    path = str(tmp_path / "limits.db")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        admitted = pool.starmap(_hammer_leased, [(path, 3_000)] * 4)

    # Never more than the limit; fewer by at most what the other processes still hold
    # in leases they took but had no request left to use.
    assert 10_000 - 4 * (lease_size(10_000) - 1) <= sum(admitted) <= 10_000


def test_a_small_limit_is_taken_one_request_at_a_time() -> None:
    assert lease_size(20) == 1
    assert lease_size(399) == 1


def test_a_lease_serves_its_process_from_memory_until_it_expires(tmp_path: Path) -> None:
    # 6,400 a day: one request frees every 13.5 s, so nothing frees during the test.
    limit, period = 6_400, 86_400.0
    leased = RateLimitStore(tmp_path / "limits.db")
    other = RateLimitStore(tmp_path / "limits.db")
    assert leased.acquire("k", limit, period, T0).is_allowed  # takes a lease of 32
    taken_by_other = 0
    while other.acquire("k", limit, period, T0).is_allowed:
        taken_by_other += 1

    assert taken_by_other == limit - lease_size(limit)
    assert leased.acquire("k", limit, period, T0 + 0.1).is_allowed  # from the lease
    assert not leased.acquire("k", limit, period, T0 + LEASE_SECONDS + 0.1).is_allowed


def test_delivery_limit_raises_rate_limited_with_retry_after(store: RateLimitStore) -> None:
    limit = DeliveryRateLimit(store, per_minute=2)
    now = datetime.fromtimestamp(T0, UTC)
    limit.admit("integration", now)
    limit.admit("integration", now)

    with pytest.raises(RateLimited) as refused:
        limit.admit("integration", now)

    assert refused.value.retry_after == 30
    assert refused.value.code == "rate_limited"
    assert "BRIDGE_RATE_LIMIT_PER_MINUTE" in refused.value.message


def test_delivery_limit_of_zero_is_off(store: RateLimitStore) -> None:
    limit = DeliveryRateLimit(store, per_minute=0)
    now = datetime.fromtimestamp(T0, UTC)
    for _ in range(100):
        limit.admit("integration", now)


def test_a_broken_store_admits_rather_than_losing_alerts(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    limit = DeliveryRateLimit(RateLimitStore(blocker / "limits.db"), per_minute=1)
    now = datetime.fromtimestamp(T0, UTC)

    limit.admit("integration", now)
    limit.admit("integration", now)  # would be refused by a working store


def test_login_limit_counts_per_email_and_address_and_forgets_on_success(
    store: RateLimitStore,
) -> None:
    logins = LoginRateLimit(store, attempts=2, window_seconds=900)
    now = datetime.fromtimestamp(T0, UTC)
    assert logins.refusal("Alice@Example.com", "10.0.0.1", now) is None
    assert logins.refusal("alice@example.com ", "10.0.0.1", now) is None

    refused = logins.refusal("alice@example.com", "10.0.0.1", now)
    assert refused is not None
    assert refused.retry_after == 450
    assert "8 minutes" in refused.message
    assert logins.refusal("alice@example.com", "10.0.0.2", now) is None
    assert logins.refusal("bob@example.com", "10.0.0.1", now) is None

    logins.forget("alice@example.com", "10.0.0.1")
    assert logins.refusal("alice@example.com", "10.0.0.1", now + timedelta(seconds=1)) is None
