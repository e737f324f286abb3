"""The escalation decision: which steps are due, once each, and when to look again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.escalation import (
    Decision,
    FiredStep,
    Policy,
    PolicyError,
    StepOutcome,
    StepRef,
    Target,
    TargetKind,
    ack_timeout_at,
    decide,
    pages_people,
    parse_step,
)

START = datetime(2025, 6, 1, 12, tzinfo=UTC)


def minutes(n: float) -> datetime:
    return START + timedelta(minutes=n)


def policy(*steps: str, repeat: int = 0, repeat_after: int | None = None) -> Policy:
    return Policy(tuple(parse_step(s) for s in steps), repeat, repeat_after)


THREE = policy("0:schedule:primary", "15:user:lead@example.com", "30:channel:ops-slack")


def refs(decision: Decision) -> list[tuple[int, int]]:
    return [(step.ref.repeat, step.ref.index) for step in decision.due]


def paged(repeat: int, index: int, at: float) -> FiredStep:
    return FiredStep(StepRef(repeat, index), minutes(at), StepOutcome.PAGED)


def test_first_step_with_no_delay_is_due_at_the_trigger() -> None:
    decision = decide(THREE, START, [], START)

    assert refs(decision) == [(0, 0)]
    assert decision.due[0].due_at == START
    assert decision.next_due_at == minutes(15)


def test_each_step_waits_its_delay_after_the_previous_one() -> None:
    history = [paged(0, 0, 0)]

    assert decide(THREE, START, history, minutes(14)).due == ()
    assert decide(THREE, START, history, minutes(14)).next_due_at == minutes(15)
    assert refs(decide(THREE, START, history, minutes(15))) == [(0, 1)]
    assert decide(THREE, START, [*history, paged(0, 1, 15)], minutes(15)).next_due_at == minutes(45)


def test_a_fired_step_is_never_due_again() -> None:
    history = [paged(0, 0, 0), paged(0, 1, 15), paged(0, 2, 45)]

    decision = decide(THREE, START, history, minutes(600))

    assert decision.due == () and decision.is_finished


def test_jobs_process_back_after_ten_minutes_fires_overdue_steps_once_each() -> None:
    quick = policy("0:user:a@x", "3:user:b@x", "4:user:c@x", "10:user:d@x")

    decision = decide(quick, START, [], minutes(10))

    assert refs(decision) == [(0, 0), (0, 1), (0, 2)]
    assert [step.due_at for step in decision.due] == [START, minutes(3), minutes(7)]
    # The late firing does not push the plan back: the last step is still due at 17.
    assert decision.next_due_at == minutes(17)


def test_overdue_rounds_of_one_step_fire_only_the_latest() -> None:
    repeating = policy("0:user:a@x", "5:user:b@x", repeat=3)

    decision = decide(repeating, START, [], minutes(17))

    # Rounds start every 10 minutes (the last step's delay): 0, 10 due; 20 not yet.
    assert refs(decision) == [(1, 0), (1, 1)]
    assert [(s.ref.repeat, s.ref.index) for s in decision.superseded] == [(0, 0), (0, 1)]
    assert decision.next_due_at == minutes(20)


def test_repeat_waits_repeat_after_minutes_then_stops_after_k_rounds() -> None:
    repeating = policy("0:user:a@x", "5:user:b@x", repeat=1, repeat_after=30)
    history = [paged(0, 0, 0), paged(0, 1, 5)]

    assert decide(repeating, START, history, minutes(6)).next_due_at == minutes(35)
    history += [paged(1, 0, 35), paged(1, 1, 40)]
    assert decide(repeating, START, history, minutes(1000)).is_finished


def test_a_step_that_paged_nobody_moves_on_at_once() -> None:
    history = [FiredStep(StepRef(0, 0), minutes(0.1), StepOutcome.NOBODY)]

    decision = decide(THREE, START, history, minutes(0.1))

    assert refs(decision) == [(0, 1)]
    assert decision.due[0].due_at == minutes(0.1)
    # The step after it waits its own delay from there.
    moved = decide(THREE, START, [*history, paged(0, 1, 0.1)], minutes(1))
    assert moved.next_due_at == minutes(30.1)


def test_acknowledged_or_resolved_escalation_has_nothing_due() -> None:
    decision = decide(THREE, START, [], minutes(100), stopped=True)

    assert decision.due == () and decision.next_due_at is None


def test_superseded_steps_count_as_done_later() -> None:
    repeating = policy("0:user:a@x", "5:user:b@x", repeat=3)
    first = decide(repeating, START, [], minutes(17))
    history = [FiredStep(s.ref, minutes(17), StepOutcome.PAGED) for s in first.due] + [
        FiredStep(s.ref, minutes(17), StepOutcome.SUPERSEDED) for s in first.superseded
    ]

    later = decide(repeating, START, history, minutes(20))

    assert refs(later) == [(2, 0)]


# ---------------------------------------------------------------- parsing and validation


def test_steps_parse_with_one_or_several_targets() -> None:
    step = parse_step(" 15:schedule:primary, channel:ops-slack ")

    assert step.delay_minutes == 15
    assert step.targets == (
        Target(TargetKind.SCHEDULE, "primary"),
        Target(TargetKind.CHANNEL, "ops-slack"),
    )
    assert str(step.targets[0]) == "schedule:primary"


@pytest.mark.parametrize(
    "text",
    ["", "x:user:a", "-1:user:a", "5:pager:a", "5:user:", "5:user", "5", "99999999999:user:a"],
)
def test_bad_steps_are_refused(text: str) -> None:
    with pytest.raises(PolicyError):
        parse_step(text)


def test_repeating_without_any_wait_is_refused() -> None:
    with pytest.raises(PolicyError, match="wait"):
        policy("0:user:a@x", repeat=2)
    assert policy("0:user:a@x", repeat=2, repeat_after=5).round_wait == timedelta(minutes=5)
    with pytest.raises(PolicyError):
        Policy(())


@pytest.mark.parametrize(
    ("severity", "minimum", "expected"),
    [
        ("critical", "error", True),
        ("error", "error", True),
        ("warning", "error", False),
        ("info", "info", True),
        ("warning", "critical", False),
    ],
)
def test_paging_threshold(severity: str, minimum: str, expected: bool) -> None:
    assert pages_people(severity, minimum) is expected


def test_ack_timeout() -> None:
    assert ack_timeout_at(START, 30) == minutes(30)
    assert ack_timeout_at(START, None) is None
    assert ack_timeout_at(START, 0) is None
