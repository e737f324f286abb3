"""Which escalation steps are due now (pure; the clock and the history come in).

A policy is ordered steps; each waits its delay after the previous step was due, then
notifies its targets (users, schedules, channels). After the last step the policy starts
over, up to `repeat` more rounds, waiting `repeat_after_minutes` (default: the last step's
delay) before the first step of each new round. The rules (docs/on-call.md):
- Every step instance (round, step) fires at most once. A jobs process that was down
  fires each overdue step once when it returns; if several rounds of the same step are
  overdue, only the latest fires and the older ones are superseded (recorded, not sent).
- Timing follows the due times, not the firing times, so a late jobs process does not
  push the rest of the policy back; except that a step that paged nobody (a schedule gap,
  no usable contact method) makes the next step due at once, when it fired.
- Acknowledge and resolve stop the escalation: nothing is due any more.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from app.domain.severity import Severity

# Beyond these a policy is a typo, and the numbers must fit INTEGER columns anyway.
MAX_DELAY_MINUTES = 4 * 7 * 24 * 60
MAX_REPEAT = 20


class PolicyError(ValueError):
    """A policy or step that cannot be."""


class TargetKind(StrEnum):
    USER = "user"
    SCHEDULE = "schedule"
    CHANNEL = "channel"


class StepOutcome(StrEnum):
    PAGED = "paged"  # at least one person or channel was notified
    NOBODY = "nobody"  # every target was a gap or unreachable: move on at once
    SUPERSEDED = "superseded"  # overdue, but a later round of the same step fired instead


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    ref: str  # a user's email, a schedule's name, a channel's name

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.ref}"


@dataclass(frozen=True)
class Step:
    delay_minutes: int
    targets: tuple[Target, ...]

    def __post_init__(self) -> None:
        if not 0 <= self.delay_minutes <= MAX_DELAY_MINUTES:
            raise PolicyError(f"A step's delay is 0 to {MAX_DELAY_MINUTES} minutes (4 weeks).")
        if not self.targets:
            raise PolicyError("A step needs at least one target.")


ONE_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Policy:
    steps: tuple[Step, ...]
    repeat: int = 0
    repeat_after_minutes: int | None = None
    # How long a "minute" of the policy lasts: one, except where tests shorten it
    # (BRIDGE_ESCALATION_MINUTE_SECONDS) to wait for real delays in seconds.
    minute: timedelta = ONE_MINUTE

    def __post_init__(self) -> None:
        if not self.steps:
            raise PolicyError("A policy needs at least one step.")
        if not 0 <= self.repeat <= MAX_REPEAT:
            raise PolicyError(f"A policy repeats 0 to {MAX_REPEAT} times.")
        if self.repeat_after_minutes is not None and not (
            0 <= self.repeat_after_minutes <= MAX_DELAY_MINUTES
        ):
            raise PolicyError(f"The wait before repeating is 0 to {MAX_DELAY_MINUTES} minutes.")
        if self.repeat and self.round_wait == timedelta(0):
            # Otherwise every round would fire at the same instant: one page, K+1 times.
            raise PolicyError(
                "A repeating policy needs a wait before it starts over: give"
                " repeat_after_minutes, or a last step with a delay."
            )

    @property
    def round_wait(self) -> timedelta:
        minutes = self.repeat_after_minutes
        return self.minute * (self.steps[-1].delay_minutes if minutes is None else minutes)

    def delay_before(self, ref: StepRef) -> timedelta:
        if ref.index == 0 and ref.repeat > 0:
            return self.round_wait
        return self.minute * self.steps[ref.index].delay_minutes

    def instances(self) -> list[StepRef]:
        return [StepRef(r, i) for r in range(self.repeat + 1) for i in range(len(self.steps))]


@dataclass(frozen=True, order=True)
class StepRef:
    repeat: int  # the round: 0 for the first pass
    index: int  # into Policy.steps


@dataclass(frozen=True)
class FiredStep:
    ref: StepRef
    fired_at: datetime
    outcome: StepOutcome


@dataclass(frozen=True)
class DueStep:
    ref: StepRef
    due_at: datetime


@dataclass(frozen=True)
class Decision:
    due: tuple[DueStep, ...]  # fire these now, in this order
    superseded: tuple[DueStep, ...]  # record these as done without sending
    next_step: DueStep | None  # the first step not due yet (if the due ones page someone)

    @property
    def next_due_at(self) -> datetime | None:
        return None if self.next_step is None else self.next_step.due_at

    @property
    def is_finished(self) -> bool:
        return not self.due and self.next_due_at is None


def parse_step(text: str) -> Step:
    """`"15:user:lead@example.com"`; several targets: `"0:schedule:primary,channel:ops"`."""
    delay, separator, rest = text.strip().partition(":")
    if not separator or not delay.strip().isdigit():
        raise PolicyError(f"A step is 'MINUTES:KIND:NAME', not {text!r}.")
    targets = []
    for part in rest.split(","):
        kind, separator, ref = part.strip().partition(":")
        if not separator or not ref.strip():
            raise PolicyError(f"A step target is 'KIND:NAME', not {part.strip()!r}.")
        try:
            targets.append(Target(TargetKind(kind.strip().lower()), ref.strip()))
        except ValueError:
            raise PolicyError(
                f"A step target is a user, schedule or channel, not {kind.strip()!r}."
            ) from None
    return Step(int(delay), tuple(targets))


def decide(
    policy: Policy,
    started_at: datetime,
    history: Iterable[FiredStep],
    now: datetime,
    *,
    stopped: bool = False,
) -> Decision:
    """The steps due at `now` given what already fired, and when the next one will be."""
    if stopped:
        return Decision((), (), None)
    fired = {step.ref: step for step in history}
    due: list[DueStep] = []
    next_step = None
    previous_due = started_at
    moved_on_at: datetime | None = None  # set when the previous step paged nobody
    for ref in policy.instances():
        due_at = moved_on_at if moved_on_at is not None else previous_due + policy.delay_before(ref)
        moved_on_at = None
        done = fired.get(ref)
        if done is not None:
            if done.outcome is StepOutcome.NOBODY:
                moved_on_at = max(done.fired_at, due_at)
            previous_due = due_at
            continue
        if due_at > now:
            next_step = DueStep(ref, due_at)
            break
        due.append(DueStep(ref, due_at))
        previous_due = due_at
    latest_round = {step.ref.index: step.ref.repeat for step in due}
    return Decision(
        tuple(step for step in due if latest_round[step.ref.index] == step.ref.repeat),
        tuple(step for step in due if latest_round[step.ref.index] != step.ref.repeat),
        next_step,
    )


SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.WARNING: 1,
    Severity.ERROR: 2,
    Severity.CRITICAL: 3,
}


def pages_people(severity: str, minimum: str) -> bool:
    """Whether an incident of `severity` pages people under a service's minimum."""
    return SEVERITY_RANK[Severity(severity)] >= SEVERITY_RANK[Severity(minimum)]


def ack_timeout_at(
    acknowledged_at: datetime, timeout_minutes: int | None, minute: timedelta = ONE_MINUTE
) -> datetime | None:
    """When an acknowledged, unresolved incident is re-triggered (None: never)."""
    if not timeout_minutes:
        return None
    return acknowledged_at + minute * timeout_minutes
