"""Property tests of the escalation decision, driven like a jobs process with outages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.domain.escalation import (
    FiredStep,
    Policy,
    Step,
    StepOutcome,
    StepRef,
    Target,
    TargetKind,
    decide,
)

START = datetime(2025, 6, 1, tzinfo=UTC)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    steps = tuple(
        Step(draw(st.integers(0, 30)), (Target(TargetKind.USER, f"p{i}@x"),))
        for i in range(draw(st.integers(1, 4)))
    )
    return Policy(steps, draw(st.integers(0, 3)), draw(st.integers(1, 40)))


def run(
    policy: Policy, polls: list[int], nobody: set[int], stop_at: int | None = None
) -> list[tuple[int, FiredStep]]:
    """Poll at the given minutes; steps whose index is in `nobody` page nobody."""
    history: list[FiredStep] = []
    log: list[tuple[int, FiredStep]] = []
    for minute in sorted(polls):
        now = START + timedelta(minutes=minute)
        stopped = stop_at is not None and minute >= stop_at
        while True:  # a job loops until nothing is due, as moving on at once requires
            decision = decide(policy, START, history, now, stopped=stopped)
            if not decision.due:
                break
            for step in decision.due:
                assert step.due_at <= now
                outcome = StepOutcome.NOBODY if step.ref.index in nobody else StepOutcome.PAGED
                fired = FiredStep(step.ref, now, outcome)
                history.append(fired)
                log.append((minute, fired))
            history += [FiredStep(s.ref, now, StepOutcome.SUPERSEDED) for s in decision.superseded]
    return log


@settings(max_examples=300, deadline=None)
@given(
    policies(), st.lists(st.integers(0, 400), min_size=1, max_size=40), st.sets(st.integers(0, 3))
)
def test_no_step_instance_ever_fires_twice(
    policy: Policy, polls: list[int], nobody: set[int]
) -> None:
    log = run(policy, polls, nobody)

    fired = [entry.ref for _, entry in log]
    assert len(fired) == len(set(fired))


@settings(max_examples=100, deadline=None)
@given(policies(), st.integers(0, 300), st.integers(1, 120))
def test_an_outage_fires_each_overdue_step_once_and_loses_none(
    policy: Policy, outage_start: int, outage_length: int
) -> None:
    every_minute = list(range(0, 600))
    with_outage = [m for m in every_minute if not outage_start <= m < outage_start + outage_length]

    steady = run(policy, every_minute, set())
    bumpy = run(policy, with_outage, set())

    steady_refs = {entry.ref for _, entry in steady}
    bumpy_refs = [entry.ref for _, entry in bumpy]
    assert len(bumpy_refs) == len(set(bumpy_refs))
    # Every step index the steady run paged, the bumpy run paged too (maybe a later round),
    # and the bumpy run pages each step at most once per poll.
    assert {ref.index for ref in steady_refs} == {ref.index for ref in bumpy_refs}
    assert set(bumpy_refs) <= steady_refs
    for minute in set(m for m, _ in bumpy):
        indexes = [entry.ref.index for m, entry in bumpy if m == minute]
        assert len(indexes) == len(set(indexes))


@settings(max_examples=100, deadline=None)
@given(policies())
def test_polling_every_minute_fires_each_step_at_its_due_minute(policy: Policy) -> None:
    log = run(policy, list(range(0, 2000)), set())

    assert {entry.ref for _, entry in log} == set(policy.instances())
    plan = START
    for ref, (minute, _entry) in zip(policy.instances(), log, strict=True):
        plan += policy.delay_before(ref)
        assert START + timedelta(minutes=minute) == plan


@settings(max_examples=200, deadline=None)
@given(policies(), st.lists(st.integers(0, 400), min_size=1, max_size=40), st.integers(0, 400))
def test_nothing_fires_once_stopped(policy: Policy, polls: list[int], stop_at: int) -> None:
    log = run(policy, polls, set(), stop_at=stop_at)

    assert all(minute < stop_at for minute, _ in log)


@settings(max_examples=200, deadline=None)
@given(policies())
def test_next_due_at_is_in_the_future_and_then_due(policy: Policy) -> None:
    history: list[FiredStep] = []
    now = START
    for _ in range(len(policy.instances()) + 1):
        decision = decide(policy, START, history, now)
        history += [FiredStep(s.ref, now, StepOutcome.PAGED) for s in decision.due]
        after = decide(policy, START, history, now)
        if after.next_due_at is None:
            assert len(history) == len(policy.instances())
            return
        assert after.next_due_at > now
        assert decide(policy, START, history, after.next_due_at - timedelta(seconds=1)).due == ()
        now = after.next_due_at
        assert decide(policy, START, history, now).due
    raise AssertionError("the policy never finished")


@settings(max_examples=100, deadline=None)
@given(policies(), st.integers(0, 2))
def test_a_step_that_paged_nobody_makes_the_next_due_when_it_fired(
    policy: Policy, empty: int
) -> None:
    assume(empty < len(policy.steps) - 1)
    log = run(policy, list(range(0, 2000)), {empty})

    first_round = {entry.ref.index: minute for minute, entry in log if entry.ref.repeat == 0}
    assert first_round[empty + 1] == first_round[empty]
    assert StepRef(0, empty + 1) in {entry.ref for _, entry in log}
