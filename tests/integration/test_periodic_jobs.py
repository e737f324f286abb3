"""Periodic jobs (prune, token refresh) run once per interval across jobs processes,
on SQLite and PostgreSQL: the claim of a (job, slot) row decides who runs one."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from app.extensions import Bridge
from app.jobs.periodic import first_firing, offset_seconds, run_once_per_interval
from app.jobs.prune import run_prune
from app.jobs.scheduler import PRUNE, TOKEN_REFRESH, _once_per_interval, build_scheduler
from app.services import job_runs

T0 = datetime(2026, 12, 10, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def other_bridge(bridge: Bridge) -> Iterator[Bridge]:
    """A second jobs process's collaborators: its own engine and pool on the same database."""
    second = Bridge(bridge.settings)
    yield second
    second.database.dispose()


def recorded(bridge: Bridge, job: str = "job") -> list[job_runs.RunView]:
    with bridge.database.transaction() as session:
        return job_runs.runs(session, job)


def test_two_processes_racing_for_each_interval_run_the_job_once(
    bridge: Bridge, other_bridge: Bridge
) -> None:
    done: list[str] = []
    lock = threading.Lock()

    def work(node: str) -> None:
        with lock:
            done.append(node)

    for interval in range(8):
        now = T0 + timedelta(seconds=60 * interval + 3)
        barrier = threading.Barrier(2)
        ran: dict[str, bool] = {}

        def process(
            node: str,
            its_bridge: Bridge,
            at: datetime = now,
            barrier: threading.Barrier = barrier,
            ran: dict[str, bool] = ran,
        ) -> None:
            barrier.wait()
            ran[node] = run_once_per_interval(
                its_bridge, "job", 60, lambda: work(node), node=node, clock=lambda: at
            )

        threads = [
            threading.Thread(target=process, args=("a", bridge)),
            threading.Thread(target=process, args=("b", other_bridge)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(ran.values()) == [False, True], ran

    runs = recorded(bridge)
    assert len(done) == 8
    assert [run.slot for run in runs] == [job_runs.slot_of(T0, 60) + n for n in range(8)]
    assert [run.node for run in runs] == done
    assert all(run.outcome == "done" and run.finished_at is not None for run in runs)


def test_a_holder_that_died_blocks_only_its_own_interval(bridge: Bridge) -> None:
    with bridge.database.transaction() as session:  # claimed, never finished: a crash
        assert job_runs.claim(session, "job", 60, "dead:1", T0 + timedelta(seconds=3))
    calls: list[datetime] = []

    def at(moment: datetime) -> bool:
        return run_once_per_interval(
            bridge, "job", 60, lambda: calls.append(moment), node="live:2", clock=lambda: moment
        )

    assert not at(T0 + timedelta(seconds=59))  # the same interval: taken
    assert at(T0 + timedelta(seconds=60))  # the next one is free
    assert not at(T0 + timedelta(seconds=90))

    runs = recorded(bridge)
    assert [(r.node, r.outcome) for r in runs] == [("dead:1", None), ("live:2", "done")]
    assert calls == [T0 + timedelta(seconds=60)]


def test_a_failing_run_is_recorded_and_the_next_interval_runs_again(bridge: Bridge) -> None:
    def boom() -> None:
        raise RuntimeError("disk on fire")

    assert run_once_per_interval(bridge, "job", 60, boom, clock=lambda: T0)
    assert run_once_per_interval(
        bridge, "job", 60, lambda: None, clock=lambda: T0 + timedelta(minutes=1)
    )

    assert [r.outcome for r in recorded(bridge)] == ["failed", "done"]


def test_jobs_are_counted_apart(bridge: Bridge) -> None:
    assert run_once_per_interval(bridge, "one", 60, lambda: None, clock=lambda: T0)
    assert run_once_per_interval(bridge, "two", 60, lambda: None, clock=lambda: T0)
    assert not run_once_per_interval(bridge, "one", 60, lambda: None, clock=lambda: T0)


def test_every_process_fires_at_the_same_moment_a_little_into_a_slot() -> None:
    firings = {first_firing(T0 + timedelta(seconds=s), 3600) for s in (5.5, 60.0, 1800.0, 3599.0)}

    assert firings == {T0 + timedelta(hours=1, seconds=5)}  # 5 s (the cap) into the hour
    assert offset_seconds(2) == pytest.approx(0.1)
    assert first_firing(T0 + timedelta(seconds=4), 3600) == T0 + timedelta(seconds=5)


@pytest.mark.timing
def test_two_real_schedulers_run_each_interval_once(bridge: Bridge, other_bridge: Bridge) -> None:
    """Two APScheduler instances (as two jobs processes schedule it) for 4 one-second
    intervals: every interval in between ran once, on one of them."""
    done: Counter[int] = Counter()
    lock = threading.Lock()

    def work() -> None:
        with lock:
            done[job_runs.slot_of(datetime.now(UTC), 1)] += 1

    schedulers = []
    for its_bridge in (bridge, other_bridge):
        scheduler = BackgroundScheduler(timezone="UTC")
        _once_per_interval(scheduler, its_bridge, "tick", 1, work)
        schedulers.append(scheduler)
    started = datetime.now(UTC)
    for scheduler in schedulers:
        scheduler.start()
    time.sleep(4.5)
    for scheduler in schedulers:
        scheduler.shutdown(wait=True)

    runs = recorded(bridge, "tick")
    assert set(done.values()) == {1}
    slots = [run.slot for run in runs]
    assert len(slots) == len(set(slots))
    first, last = job_runs.slot_of(started, 1) + 1, job_runs.slot_of(started, 1) + 4
    assert set(range(first, last)) <= set(slots)  # none missed
    assert len({run.node for run in runs}) == 1  # same name here: one host, one pid


def test_the_scheduler_runs_prune_and_token_refresh_once_per_interval(bridge: Bridge) -> None:
    scheduler = build_scheduler(bridge)
    jobs = {job.id: job for job in scheduler.get_jobs()}

    for name, minutes in (
        (PRUNE, bridge.settings.prune_interval_minutes),
        (TOKEN_REFRESH, bridge.settings.sentry_token_refresh_interval_minutes),
    ):
        assert jobs[name].func is run_once_per_interval
        assert jobs[name].args[1:3] == (name, minutes * bridge.settings.job_minute_seconds)
        assert jobs[name].trigger.interval == timedelta(
            seconds=minutes * bridge.settings.job_minute_seconds
        )
    # Claimed work stays on every process, on its own interval.
    assert jobs["sentry_outbox"].func is not run_once_per_interval
    assert jobs["spool_drain"].func is not run_once_per_interval
    assert jobs["escalations"].func is not run_once_per_interval


def test_prune_forgets_job_runs_older_than_the_retention(bridge: Bridge) -> None:
    old = datetime.now(UTC) - timedelta(days=bridge.settings.delivery_retention_days + 1)
    with bridge.database.transaction() as session:
        job_runs.claim(session, "job", 60, "n", old)
        job_runs.claim(session, "job", 60, "n", datetime.now(UTC))

    run_prune(bridge)

    assert len(recorded(bridge)) == 1
