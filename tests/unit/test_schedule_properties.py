"""Property tests of who is on call: one answer at every instant, stretches that tile time.

The oracle walks every shift boundary from a layer's anchor one by one, the slow obvious
way, so the fast lookup in on_call_at (estimate, then correct) is checked against it.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.schedule import (
    Handoff,
    Layer,
    Override,
    Schedule,
    ShiftUnit,
    handoff_step,
    local_to_utc,
    on_call_at,
    stretches,
)

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia", "UTC"]
# Near DST changes (and Samoa's skipped 30 December 2011), where the bugs would be.
BASES = [
    datetime(2025, 3, 8, tzinfo=UTC),
    datetime(2025, 3, 28, tzinfo=UTC),
    datetime(2025, 10, 24, tzinfo=UTC),
    datetime(2025, 4, 4, tzinfo=UTC),
    datetime(2011, 12, 27, tzinfo=UTC),
]
PEOPLE = ["a", "b", "c"]
TINY = timedelta(microseconds=1)


@st.composite
def schedules(draw: st.DrawFn) -> tuple[Schedule, datetime]:
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    base = draw(st.sampled_from(BASES))
    layers = []
    for _ in range(draw(st.integers(0, 3))):
        start = base + timedelta(minutes=draw(st.integers(-3000, 6000)))
        end = draw(
            st.none() | st.integers(1, 20000).map(lambda m, s=start: s + timedelta(minutes=m))
        )
        layers.append(
            Layer(
                tuple(draw(st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=3))),
                draw(st.integers(1, 3)),
                draw(st.sampled_from(list(ShiftUnit))),
                Handoff(
                    time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30, 45]))),
                    draw(st.none() | st.integers(0, 6)),
                ),
                start,
                end,
            )
        )
    overrides = []
    for _ in range(draw(st.integers(0, 3))):
        start = base + timedelta(minutes=draw(st.integers(-2000, 8000)))
        length = timedelta(minutes=draw(st.integers(1, 4000)))
        overrides.append(Override(draw(st.sampled_from(PEOPLE)), start, start + length))
    instant = base + timedelta(seconds=draw(st.integers(-5 * 86400, 12 * 86400)))
    return Schedule(zone, tuple(layers), tuple(overrides)), instant


def oracle_person(schedule: Schedule, at: datetime) -> str | None:
    for override in reversed(schedule.overrides):
        if override.start <= at < override.end:
            return override.person
    for layer in reversed(schedule.layers):
        if layer.end is not None and at >= layer.end:
            continue
        local = layer.start.astimezone(schedule.zone).replace(tzinfo=None) - timedelta(days=8)
        candidate = datetime.combine(local.date(), layer.handoff.at)
        while layer.handoff.weekday is not None and candidate.weekday() != layer.handoff.weekday:
            candidate += timedelta(days=1)
        while local_to_utc(candidate, schedule.zone) < layer.start:
            candidate += handoff_step(layer.shift, layer.handoff)
        if local_to_utc(candidate, schedule.zone) > at:
            continue
        k = 0
        while local_to_utc(candidate + (k + 1) * layer.shift, schedule.zone) <= at:
            k += 1
        return layer.members[k % len(layer.members)]
    return None


@settings(max_examples=300, deadline=None)
@given(schedules())
def test_every_instant_has_one_answer_inside_its_stretch(case: tuple[Schedule, datetime]) -> None:
    schedule, at = case

    found = on_call_at(schedule, at)

    assert found.start is None or found.start <= at
    assert found.end is None or at < found.end
    assert found.person == oracle_person(schedule, at)
    assert (found.person is None) == (found.source == "gap")


@settings(max_examples=300, deadline=None)
@given(schedules())
def test_neighbouring_stretches_meet_exactly(case: tuple[Schedule, datetime]) -> None:
    schedule, at = case
    found = on_call_at(schedule, at)

    if found.end is not None:
        following = on_call_at(schedule, found.end)
        assert following.start == found.end
        assert (following.person, following.source, following.index) != (
            found.person,
            found.source,
            found.index,
        ) or following.source == "layer"
    if found.start is not None:
        assert on_call_at(schedule, found.start - TINY).end == found.start
        assert on_call_at(schedule, found.start) == found


@settings(max_examples=150, deadline=None)
@given(schedules(), st.integers(1, 20 * 24))
def test_stretches_tile_a_window_without_holes_or_overlaps(
    case: tuple[Schedule, datetime], hours: int
) -> None:
    schedule, start = case
    end = start + timedelta(hours=hours)

    covering = list(stretches(schedule, start, end))

    assert covering[0].start == start and covering[-1].end == end
    for earlier, later in pairwise(covering):
        assert earlier.end == later.start
    for stretch in covering:
        assert stretch.start is not None and stretch.end is not None
        assert stretch.start < stretch.end
        assert on_call_at(schedule, stretch.start).person == stretch.person
        assert on_call_at(schedule, stretch.end - TINY).person == stretch.person
