"""Rate limits shared by every node through Redis (BRIDGE_RATE_LIMIT_URL), against the
real server on 127.0.0.1:6379; each test has a key prefix of its own, removed after it.

The same scenarios run on the file store (one host) and on Redis, and the two must
answer alike: the same statuses, the same error body, a Retry-After.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from flask import Flask
from prometheus_client import REGISTRY

from app import create_app
from app.extensions import Bridge
from app.services import catalog
from app.services.accounts import Role, create_user
from app.store.rate_limits import RateLimitStore
from app.store.shared_limits import RedisRateLimitStore
from app.web.security import rate_limits
from config.settings import Settings, SettingsError, load_settings
from tests.support.integrations import MadeIntegration
from tests.support.nodes import hit_shared_bucket
from tests.support.pages import PASSWORD, csrf_token, log_in
from tests.support.payloads import build, issue_event
from tests.support.ports import free_port

Make = Callable[..., MadeIntegration]
Node = Callable[[], Flask]


@pytest.fixture
def store(redis_url: str, redis_prefix: str) -> RedisRateLimitStore:
    return RedisRateLimitStore(redis_url, key_prefix=redis_prefix)


def _keys(redis_url: str, prefix: str) -> list[bytes]:
    return list(redis.Redis.from_url(redis_url).scan_iter(match=f"{prefix}:*"))


# ---------------------------------------------------------------- the store


def test_a_burst_of_exactly_the_limit_is_admitted_then_retry_after_says_when(
    store: RedisRateLimitStore,
) -> None:
    verdicts = [store.acquire("k", 5, 60.0, 0.0) for _ in range(6)]

    assert [v.is_allowed for v in verdicts] == [True] * 5 + [False]
    # The oldest of the five leaves the moving window a minute after it came.
    assert 58 <= verdicts[-1].retry_after_seconds <= 60


def test_a_slot_frees_when_the_oldest_request_leaves_the_window(
    store: RedisRateLimitStore,
) -> None:
    assert store.acquire("k", 2, 1.0, 0.0).is_allowed
    assert store.acquire("k", 2, 1.0, 0.0).is_allowed
    refused = store.acquire("k", 2, 1.0, 0.0)
    assert not refused.is_allowed
    assert refused.retry_after_seconds == 1

    time.sleep(1.1)

    assert store.acquire("k", 2, 1.0, 0.0).is_allowed


def test_two_nodes_share_one_bucket_and_keys_are_counted_apart(
    redis_url: str, redis_prefix: str
) -> None:
    node_a = RedisRateLimitStore(redis_url, key_prefix=redis_prefix)
    node_b = RedisRateLimitStore(redis_url, key_prefix=redis_prefix)

    assert [node_a.acquire("k", 3, 60.0, 0.0).is_allowed for _ in range(2)] == [True, True]
    assert node_b.acquire("k", 3, 60.0, 0.0).is_allowed
    assert not node_a.acquire("k", 3, 60.0, 0.0).is_allowed
    assert not node_b.acquire("k", 3, 60.0, 0.0).is_allowed
    assert node_b.acquire("other", 3, 60.0, 0.0).is_allowed


def test_clear_forgets_a_bucket(store: RedisRateLimitStore) -> None:
    store.acquire("login:a", 1, 900.0, 0.0)
    assert not store.acquire("login:a", 1, 900.0, 0.0).is_allowed

    store.clear("login:a", 1, 900.0)

    assert store.acquire("login:a", 1, 900.0, 0.0).is_allowed


def test_redis_keeps_hashed_keys_under_the_prefix_only(
    store: RedisRateLimitStore, redis_url: str, redis_prefix: str
) -> None:
    store.acquire("delivery:secret-integration-id", 10, 60.0, 0.0)

    keys = _keys(redis_url, redis_prefix)
    assert len(keys) == 1
    assert b"secret-integration-id" not in keys[0]


def test_four_processes_on_one_redis_admit_exactly_the_limit(
    redis_url: str, redis_prefix: str
) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start = context.Barrier(4)
    processes = [
        context.Process(
            target=hit_shared_bucket, args=(redis_url, redis_prefix, 15, start, results)
        )
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    admitted = [results.get(timeout=30) for _ in processes]
    for process in processes:
        process.join(timeout=30)

    assert sum(admitted) == 20  # 60 tried by four "nodes" at once


# ---------------------------------------------------------------- unreachable Redis


def _unchecked() -> float:
    return REGISTRY.get_sample_value("bridge_rate_limit_unchecked_total") or 0.0


@pytest.mark.timing
def test_unreachable_redis_admits_logs_once_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    dead = RedisRateLimitStore(f"redis://127.0.0.1:{free_port()}/0")
    before = _unchecked()

    with caplog.at_level(logging.WARNING, logger="app.store.shared_limits"):
        started = time.monotonic()
        verdicts = [dead.acquire("k", 1, 60.0, 0.0) for _ in range(5)]
        elapsed = time.monotonic() - started

    assert all(v.is_allowed for v in verdicts)
    assert elapsed < 1.0
    assert _unchecked() - before == 5
    warnings = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(warnings) == 1
    problem = dead.problem()
    assert problem is not None and "unreachable" in problem


def test_the_password_of_the_redis_url_is_never_named(caplog: pytest.LogCaptureFixture) -> None:
    dead = RedisRateLimitStore(f"redis://:hunter2secret@127.0.0.1:{free_port()}/0")
    with caplog.at_level(logging.DEBUG):
        dead.acquire("k", 1, 60.0, 0.0)
        problem = dead.problem() or ""

    assert "hunter2secret" not in caplog.text
    assert "hunter2secret" not in problem
    assert "hunter2secret" not in repr(
        load_settings({"BRIDGE_RATE_LIMIT_URL": "redis://:hunter2secret@h:6379/0"})
    )


def test_the_url_must_be_a_redis_url() -> None:
    with pytest.raises(SettingsError, match="BRIDGE_RATE_LIMIT_URL"):
        load_settings({"BRIDGE_RATE_LIMIT_URL": "http://127.0.0.1:6379"})
    assert load_settings({}).rate_limit_url is None


# ---------------------------------------------------------------- through the app


@pytest.fixture(params=["file", "redis"])
def node(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Iterator[Node]:
    """Make app "nodes" on one database: each with its own instance folder; with the
    redis backend they share one Redis prefix, with the file backend one file each."""
    extra: dict[str, object] = {}
    if request.param == "redis":
        extra = {
            "rate_limit_url": request.getfixturevalue("redis_url"),
            "rate_limit_prefix": request.getfixturevalue("redis_prefix"),
        }
    made: list[Flask] = []

    def make() -> Flask:
        application = create_app(
            replace(
                settings,
                instance_path=tmp_path / f"node{len(made)}",
                rate_limit_per_minute=3,
                refused_rate_limit_per_minute=4,
                unknown_rate_limit_per_minute=2,
                login_max_failures=2,
                **extra,  # type: ignore[arg-type]
            )
        )
        made.append(application)
        return application

    make.backend = request.param  # type: ignore[attr-defined]
    yield make
    for application in made:
        application.extensions["bridge"].database.dispose()


def test_the_backend_follows_the_setting(node: Node) -> None:
    application = node()
    with application.app_context():
        store = rate_limits().store
    expected = RedisRateLimitStore if node.backend == "redis" else RateLimitStore  # type: ignore[attr-defined]
    assert isinstance(store, expected)


def test_over_the_limit_the_answer_is_the_same_429_on_either_backend(
    node: Node, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    client = node().test_client()

    answers = [
        client.post(integration.url, data=d.body, headers=d.headers)
        for d in (issue_event(n) for n in range(4))
    ]

    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    refused = answers[-1]
    body = refused.get_json()
    assert body["error"]["code"] == "rate_limited"
    assert "BRIDGE_RATE_LIMIT_PER_MINUTE" in body["error"]["message"]
    retry_after = int(refused.headers["Retry-After"])
    # GCRA (file) frees one slot every 60/3 s; the moving window (Redis) when the oldest
    # of the three leaves the minute.
    assert retry_after == (20 if node.backend == "file" else 60)  # type: ignore[attr-defined]
    assert f"retry after {retry_after} s" in body["error"]["message"]


def test_with_redis_the_limit_holds_across_nodes(
    node: Node, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    first, second = node().test_client(), node().test_client()

    statuses = [
        (first if n % 2 else second)
        .post(integration.url, data=d.body, headers=d.headers)
        .status_code
        for n, d in enumerate(issue_event(n) for n in range(8))
    ]

    accepted = statuses.count(202)
    if node.backend == "redis":  # type: ignore[attr-defined]
        assert accepted == 3
    else:  # each host counts its own share: what BRIDGE_RATE_LIMIT_URL is for
        assert accepted == 6
    assert statuses.count(429) == 8 - accepted


def test_refused_unknown_and_disabled_buckets_are_shared_too(
    node: Node, bridge: Bridge, make_integration: Make
) -> None:
    signed = make_integration(secret="the-real-secret")
    nodes = [node().test_client(), node().test_client()]
    forged = [build("integration_issue_created", secret="a-guess") for _ in range(6)]

    forged_answers = [
        nodes[n % 2].post(signed.url, data=d.body, headers=d.headers).status_code
        for n, d in enumerate(forged)
    ]
    unknown = [
        nodes[n % 2]
        .post(
            "/api/integrations/sentry?integrationId=no-such-id",
            data=issue_event(n).body,
            headers=issue_event(n).headers,
        )
        .status_code
        for n in range(4)
    ]
    plain = make_integration(service="Search")
    with bridge.database.transaction() as session:
        catalog.set_enabled(session, plain.id, False, datetime.now(UTC))
    disabled = [
        nodes[n % 2].post(plain.url, data=d.body, headers=d.headers).status_code
        for n, d in enumerate(issue_event(n) for n in range(6))
    ]

    if node.backend == "redis":  # type: ignore[attr-defined]
        assert forged_answers == [401] * 4 + [429] * 2
        assert unknown == [404, 404, 429, 429]
        assert disabled == [403] * 4 + [429] * 2
    else:  # two hosts: twice the budget
        assert forged_answers == [401] * 6
        assert unknown == [404] * 4
        assert disabled == [403] * 6


def test_the_login_limit_is_shared_and_a_success_clears_it(node: Node, bridge: Bridge) -> None:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    with bridge.database.transaction() as session:
        create_user(session, email, PASSWORD, Role.ADMIN, datetime.now(UTC))
    first, second = node().test_client(), node().test_client()

    # The limit is two failures: one on each node, then the right password.
    assert log_in(first, email, "wrong password!") == 401
    assert log_in(second, email, "wrong password!") == 401
    third = log_in(first, email)

    if node.backend == "file":  # type: ignore[attr-defined]
        assert third == 302  # each host saw one failure only
        return
    assert third == 429  # even the right password: two failures were counted between them


def test_with_redis_a_success_clears_the_shared_login_bucket(node: Node, bridge: Bridge) -> None:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    with bridge.database.transaction() as session:
        create_user(session, email, PASSWORD, Role.ADMIN, datetime.now(UTC))
    first, second = node().test_client(), node().test_client()

    assert log_in(first, email, "wrong password!") == 401
    assert log_in(second, email) == 302  # clears what the first node counted
    second.post("/logout", data={"csrf_token": csrf_token(second, "/incidents")})

    assert log_in(first, email, "wrong password!") == 401
    assert log_in(second, email) == 302  # a single failure since the success


def test_with_redis_down_deliveries_are_admitted_and_readyz_warns_but_stays_ready(
    settings: Settings, tmp_path: Path, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    application = create_app(
        replace(
            settings,
            instance_path=tmp_path / "node",
            rate_limit_per_minute=1,
            rate_limit_url=f"redis://127.0.0.1:{free_port()}/0",
        )
    )
    client = application.test_client()
    try:
        statuses = [
            client.post(integration.url, data=d.body, headers=d.headers).status_code
            for d in (issue_event(n) for n in range(3))
        ]
        ready = client.get("/readyz")
    finally:
        application.extensions["bridge"].database.dispose()

    assert statuses == [202, 202, 202]  # past the limit of 1: never lose an alert
    assert ready.status_code == 200
    assert ready.get_json()["checks"]["rate_limits"].startswith("warning: redis://127.0.0.1:")


def test_readyz_says_ok_when_redis_answers(node: Node) -> None:
    checks = node().test_client().get("/readyz").get_json()["checks"]

    assert checks["rate_limits"] == "ok"
