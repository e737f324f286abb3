"""Who is on call at an instant: rotation layers, overrides and gaps (pure, zoneinfo).

The model (docs/on-call.md):
- A layer hands off in the wall-clock time of the schedule's zone: shift k begins at
  `anchor + k * shift` computed on local (naive) date-times, where the anchor is the first
  handoff on or after the layer's start. A weekly Monday 09:00 handoff stays 09:00 local
  across daylight saving, so that shift is 167 or 169 hours long.
- A handoff at a local time that does not exist (spring forward) happens the instant the
  clocks jump; one at a local time that happens twice (fall back) happens at the first.
  Both rules keep handoffs in order, so every shift is an interval (a shift the clocks
  skip entirely is empty and never on call).
- Overrides beat every layer; a later override beats an earlier one. A higher layer beats
  a lower one wherever it is active (from its first handoff until its optional end).
- The answer at T is one stretch: the person (or None, a gap) and [start, end) during
  which the same override, the same shift of the same layer, or the same gap decides.
  A stretch's end is the next one's start; None stands for "unbounded".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

MAX_SHIFT_COUNT = 24 * 366  # a year of hours: longer is a typo, and must fit INTEGER
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ScheduleError(ValueError):
    """A schedule, layer, handoff or override that cannot be."""


class ShiftUnit(StrEnum):
    HOURS = "hours"
    DAYS = "days"
    WEEKS = "weeks"


@dataclass(frozen=True)
class Handoff:
    """When shifts change hands: a local time of day, optionally on one weekday (0 = Mon)."""

    at: time
    weekday: int | None = None

    def __str__(self) -> str:
        clock = self.at.strftime("%H:%M")
        return clock if self.weekday is None else f"{WEEKDAYS[self.weekday]} {clock}"


def parse_handoff(text: str) -> Handoff:
    """`"mon 09:00"`, `"09:00"` or `"Monday 9:30"`."""
    words = text.strip().lower().split()
    if not words or len(words) > 2:
        raise ScheduleError(f"A handoff is 'HH:MM' or 'mon HH:MM', not {text!r}.")
    weekday = None
    if len(words) == 2:
        day = words[0][:3]
        if day not in WEEKDAYS:
            raise ScheduleError(f"Unknown weekday {words[0]!r} in handoff {text!r}.")
        weekday = WEEKDAYS.index(day)
    hours, _, minutes = words[-1].partition(":")
    try:
        at = time(int(hours), int(minutes or "0"))
    except ValueError:
        raise ScheduleError(f"A handoff time is HH:MM (00:00-23:59), not {words[-1]!r}.") from None
    return Handoff(at, weekday)


def available_zones() -> set[str]:
    return available_timezones()


def load_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"Unknown time zone {name!r} (use an IANA name).") from None


@dataclass(frozen=True)
class Layer:
    members: tuple[str, ...]
    shift_count: int
    shift_unit: ShiftUnit
    handoff: Handoff
    start: datetime  # aware; the first shift begins at the first handoff on or after it
    end: datetime | None = None  # aware; the layer stops deciding here

    def __post_init__(self) -> None:
        if not self.members:
            raise ScheduleError("A rotation layer needs at least one member.")
        if not 1 <= self.shift_count <= MAX_SHIFT_COUNT:
            raise ScheduleError(f"A shift lasts 1 to {MAX_SHIFT_COUNT} hours, days or weeks.")
        _require_aware(self.start, "layer start")
        if self.end is not None:
            _require_aware(self.end, "layer end")

    @property
    def shift(self) -> timedelta:
        return timedelta(**{self.shift_unit.value: self.shift_count})


@dataclass(frozen=True)
class Override:
    person: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _require_aware(self.start, "override start")
        _require_aware(self.end, "override end")
        if self.end <= self.start:
            raise ScheduleError("An override must end after it starts.")


@dataclass(frozen=True)
class Schedule:
    zone: ZoneInfo
    layers: tuple[Layer, ...] = ()  # lowest first: the last active layer wins
    overrides: tuple[Override, ...] = ()  # oldest first: the last covering override wins


@dataclass(frozen=True)
class OnCall:
    """One stretch: `person` (None: a gap) from `start` until `end` (None: unbounded)."""

    person: str | None
    start: datetime | None
    end: datetime | None
    source: str  # "override", "layer" or "gap"
    index: int | None = None  # into Schedule.overrides or Schedule.layers, by source

    @property
    def is_gap(self) -> bool:
        return self.person is None


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ScheduleError(f"The {what} must carry a time zone.")


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def local_to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive local time as an instant: a skipped time is the jump, a repeated one the first."""
    first = local.replace(tzinfo=zone, fold=0)
    instant = _utc(first)
    if instant.astimezone(zone).replace(tzinfo=None) == local:
        return instant
    # Skipped by the clocks. fold=1 reads it with the later offset (an instant before the
    # jump), fold=0 with the earlier (after it); find the jump between them to the second.
    low = _utc(local.replace(tzinfo=zone, fold=1))
    high = instant
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= local:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0) if high.microsecond else high


def handoff_step(shift: timedelta, handoff: Handoff) -> timedelta:
    """The spacing of the handoff times a first shift may start at (see _Rotation.of)."""
    period = timedelta(weeks=1) if handoff.weekday is not None else timedelta(days=1)
    return shift if shift <= period and period % shift == timedelta(0) else period


def _utc_to_local(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


@dataclass(frozen=True)
class _Rotation:
    """A layer resolved against the zone: its shift boundaries as instants."""

    layer: Layer
    zone: ZoneInfo
    anchor: datetime  # naive local time of the first handoff

    @classmethod
    def of(cls, layer: Layer, zone: ZoneInfo) -> _Rotation:
        start = _utc(layer.start)
        handoff = layer.handoff
        candidate = datetime.combine(_utc_to_local(start, zone).date(), handoff.at)
        if handoff.weekday is not None:
            candidate -= timedelta(days=(candidate.weekday() - handoff.weekday) % 7)
        # The anchor is the first handoff whose instant is on or after the start. Shifts
        # that divide the handoff's period (a week for a weekday, else a day) hand off on a
        # lattice through it (8-hour shifts from 09:00: 01:00, 09:00, 17:00); any other
        # shift starts at the handoff itself (2-day shifts from "wed 09:00": the first
        # Wednesday 09:00), never at a phase that depends on which week was counted from.
        step = handoff_step(layer.shift, handoff)
        while local_to_utc(candidate - step, zone) >= start:
            candidate -= step
        while local_to_utc(candidate, zone) < start:
            candidate += step
        return cls(layer, zone, candidate)

    @property
    def is_ever_active(self) -> bool:
        until = self.active_until
        return until is None or until > self.active_from

    def boundary(self, k: int) -> datetime:
        return local_to_utc(self.anchor + k * self.layer.shift, self.zone)

    @property
    def active_from(self) -> datetime:
        return self.boundary(0)

    @property
    def active_until(self) -> datetime | None:
        return None if self.layer.end is None else _utc(self.layer.end)

    def is_active(self, at: datetime) -> bool:
        until = self.active_until
        return self.active_from <= at and (until is None or at < until)

    def shift_at(self, at: datetime) -> int:
        """The k with boundary(k) <= at < boundary(k+1); `at` must be >= boundary(0)."""
        local = _utc_to_local(at, self.zone)
        k = max(int((local - self.anchor) / self.layer.shift), 0)
        while k > 0 and self.boundary(k) > at:
            k -= 1
        while self.boundary(k + 1) <= at:
            k += 1
        return k


def _later(*values: datetime | None) -> datetime | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None


def _earlier(*values: datetime | None) -> datetime | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


def on_call_at(schedule: Schedule, at: datetime) -> OnCall:
    """Who is on call at `at`, and the stretch [start, end) of that answer."""
    _require_aware(at, "instant")
    at = _utc(at)
    overrides = [(_utc(o.start), _utc(o.end), o.person) for o in schedule.overrides]
    for index in range(len(overrides) - 1, -1, -1):
        start, end, person = overrides[index]
        if start <= at < end:
            higher = overrides[index + 1 :]
            return OnCall(
                person,
                _later(start, *(e for s, e, _ in higher if e <= at)),
                _earlier(end, *(s for s, _, _ in higher if s > at)),
                "override",
                index,
            )
    override_ends = [end for _, end, _ in overrides if end <= at]
    override_starts = [start for start, _, _ in overrides if start > at]
    # A layer that ends before its first handoff never decides, so it bounds nothing.
    rotations = [
        (index, rotation)
        for index, layer in enumerate(schedule.layers)
        if (rotation := _Rotation.of(layer, schedule.zone)).is_ever_active
    ]
    for position in range(len(rotations) - 1, -1, -1):
        index, rotation = rotations[position]
        if not rotation.is_active(at):
            continue
        above = [r for _, r in rotations[position + 1 :]]
        k = rotation.shift_at(at)
        members = rotation.layer.members
        return OnCall(
            members[k % len(members)],
            _later(
                rotation.boundary(k),
                *override_ends,
                *(r.active_until for r in above if _is_past(r.active_until, at)),
            ),
            _earlier(
                rotation.boundary(k + 1),
                rotation.active_until,
                *override_starts,
                *(r.active_from for r in above if r.active_from > at),
            ),
            "layer",
            index,
        )
    return OnCall(
        None,
        _later(
            *override_ends, *(r.active_until for _, r in rotations if _is_past(r.active_until, at))
        ),
        _earlier(*override_starts, *(r.active_from for _, r in rotations if r.active_from > at)),
        "gap",
    )


def _is_past(moment: datetime | None, at: datetime) -> bool:
    return moment is not None and moment <= at


def stretches(schedule: Schedule, start: datetime, end: datetime) -> Iterator[OnCall]:
    """The stretches covering [start, end), in order, each clipped to the window."""
    _require_aware(start, "window start")
    _require_aware(end, "window end")
    cursor, end = _utc(start), _utc(end)
    while cursor < end:
        found = on_call_at(schedule, cursor)
        until = end if found.end is None else min(found.end, end)
        yield OnCall(found.person, cursor, until, found.source, found.index)
        cursor = until


def next_different(schedule: Schedule, at: datetime, limit: int = 1000) -> OnCall | None:
    """The first stretch after the one at `at` with someone else (or a gap) deciding."""
    current = on_call_at(schedule, at)
    for _ in range(limit):
        if current.end is None:
            return None
        following = on_call_at(schedule, current.end)
        if following.person != current.person:
            return following
        current = following
    return None
