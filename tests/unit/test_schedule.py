"""Who is on call: handoffs in wall-clock time across DST, month ends, layers, overrides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.domain.schedule import (
    Handoff,
    Layer,
    Override,
    Schedule,
    ScheduleError,
    ShiftUnit,
    load_zone,
    local_to_utc,
    next_different,
    on_call_at,
    parse_handoff,
    stretches,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def layer(
    members: str = "a,b",
    count: int = 1,
    unit: ShiftUnit = ShiftUnit.WEEKS,
    handoff: str = "mon 09:00",
    start: datetime = datetime(2025, 3, 17, 9, tzinfo=BERLIN),
    end: datetime | None = None,
) -> Layer:
    return Layer(tuple(members.split(",")), count, unit, parse_handoff(handoff), start, end)


# ---------------------------------------------------------------- handoffs and DST


def test_weekly_monday_handoff_stays_at_nine_local_across_spring_forward() -> None:
    schedule = Schedule(BERLIN, (layer(),))

    week = on_call_at(schedule, datetime(2025, 3, 26, tzinfo=BERLIN))

    assert week.person == "b"
    assert week.start == datetime(2025, 3, 24, 9, tzinfo=BERLIN) == utc(2025, 3, 24, 8)
    assert week.end == datetime(2025, 3, 31, 9, tzinfo=BERLIN) == utc(2025, 3, 31, 7)
    assert week.end - week.start == timedelta(hours=167)


def test_weekly_handoff_stays_at_nine_local_across_fall_back_in_new_york() -> None:
    start = datetime(2025, 10, 27, 9, tzinfo=NEW_YORK)
    schedule = Schedule(NEW_YORK, (layer(start=start),))

    week = on_call_at(schedule, datetime(2025, 11, 5, tzinfo=NEW_YORK))

    assert week.person == "b"
    assert week.start == utc(2025, 11, 3, 14)  # 09:00 EST
    assert on_call_at(schedule, utc(2025, 11, 1)).start == utc(2025, 10, 27, 13)  # 09:00 EDT
    assert week.start - on_call_at(schedule, utc(2025, 11, 1)).start == timedelta(hours=169)


def test_handoff_in_the_skipped_hour_happens_when_the_clocks_jump() -> None:
    start = datetime(2025, 3, 28, tzinfo=BERLIN)
    schedule = Schedule(BERLIN, (layer(unit=ShiftUnit.DAYS, handoff="02:30", start=start),))

    # 02:30 does not exist on 30 March in Berlin: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
    assert on_call_at(schedule, utc(2025, 3, 30, 0, 59)).end == utc(2025, 3, 30, 1)
    after = on_call_at(schedule, utc(2025, 3, 30, 1))
    assert after.start == utc(2025, 3, 30, 1)
    assert after.end == utc(2025, 3, 31, 0, 30)  # 02:30 CEST the next night


def test_handoff_in_the_skipped_hour_in_new_york() -> None:
    assert local_to_utc(datetime(2025, 3, 9, 2, 30), NEW_YORK) == utc(2025, 3, 9, 7)
    assert local_to_utc(datetime(2025, 3, 9, 3, 0), NEW_YORK) == utc(2025, 3, 9, 7)


def test_handoff_in_the_repeated_hour_happens_at_its_first_occurrence() -> None:
    start = datetime(2025, 10, 31, tzinfo=NEW_YORK)
    schedule = Schedule(NEW_YORK, (layer(unit=ShiftUnit.DAYS, handoff="01:30", start=start),))

    # 01:30 happens twice on 2 November in New York: at 05:30 UTC (EDT) and 06:30 (EST).
    shift = on_call_at(schedule, utc(2025, 11, 2, 6))
    assert shift.start == utc(2025, 11, 2, 5, 30)
    assert shift.end == utc(2025, 11, 3, 6, 30)
    assert shift.end - shift.start == timedelta(hours=25)
    assert local_to_utc(datetime(2025, 10, 26, 2, 30), BERLIN) == utc(2025, 10, 26, 0, 30)


def test_hourly_shift_wholly_inside_the_skipped_hour_is_never_on_call() -> None:
    start = datetime(2025, 3, 30, 0, tzinfo=BERLIN)
    schedule = Schedule(BERLIN, (layer("a,b", 1, ShiftUnit.HOURS, "00:00", start),))

    covering = list(stretches(schedule, utc(2025, 3, 29, 23), utc(2025, 3, 30, 2)))

    # Shifts at 00:00 (a), 01:00 (b), 02:00 (a: skipped by the clocks), 03:00 CEST (b).
    assert [(s.person, s.start) for s in covering] == [
        ("a", utc(2025, 3, 29, 23)),
        ("b", utc(2025, 3, 30, 0)),
        ("b", utc(2025, 3, 30, 1)),
    ]


def test_twelve_hour_shifts_keep_their_local_handoffs_so_one_is_thirteen_hours() -> None:
    start = datetime(2025, 10, 25, 9, tzinfo=BERLIN)
    schedule = Schedule(BERLIN, (layer("day,night", 12, ShiftUnit.HOURS, "09:00", start),))

    night = on_call_at(schedule, datetime(2025, 10, 26, 3, tzinfo=BERLIN))

    assert night.person == "night"
    assert night.start == datetime(2025, 10, 25, 21, tzinfo=BERLIN)
    assert night.end == datetime(2025, 10, 26, 9, tzinfo=BERLIN)
    assert night.end - night.start == timedelta(hours=13)


# ---------------------------------------------------------------- start, month ends


def test_first_shift_begins_at_the_first_handoff_on_or_after_the_start() -> None:
    wednesday = datetime(2025, 1, 29, 12, tzinfo=BERLIN)
    schedule = Schedule(BERLIN, (layer(start=wednesday),))

    before = on_call_at(schedule, wednesday)
    first = on_call_at(schedule, datetime(2025, 2, 3, 9, tzinfo=BERLIN))

    assert before.is_gap and before.start is None
    assert before.end == datetime(2025, 2, 3, 9, tzinfo=BERLIN)
    assert first.person == "a" and first.start == before.end


def test_shifts_that_do_not_divide_a_week_start_at_the_named_weekday() -> None:
    """Found by hypothesis: 2-day shifts from "wed 01:15" started on a Friday, because the
    lattice of 2-day steps through some Wednesday had a phase that depended on which."""
    thursday = datetime(2025, 3, 6, 23, 59, tzinfo=BERLIN)
    schedule = Schedule(BERLIN, (layer("a", 2, ShiftUnit.DAYS, "wed 01:15", thursday),))

    friday = on_call_at(schedule, datetime(2025, 3, 8, 1, tzinfo=BERLIN))
    first = on_call_at(schedule, datetime(2025, 3, 12, 1, 15, tzinfo=BERLIN))

    assert friday.is_gap
    assert first.person == "a"
    assert first.start == datetime(2025, 3, 12, 1, 15, tzinfo=BERLIN)
    assert first.end == datetime(2025, 3, 14, 1, 15, tzinfo=BERLIN)


def test_start_exactly_at_a_handoff_starts_there() -> None:
    start = datetime(2025, 2, 3, 9, tzinfo=BERLIN)

    assert on_call_at(Schedule(BERLIN, (layer(start=start),)), start).start == start


def test_short_shifts_start_at_the_next_handoff_of_the_same_day() -> None:
    start = datetime(2025, 1, 6, 10, tzinfo=BERLIN)
    schedule = Schedule(BERLIN, (layer("a,b,c", 8, ShiftUnit.HOURS, "09:00", start),))

    assert on_call_at(schedule, start).end == datetime(2025, 1, 6, 17, tzinfo=BERLIN)
    assert on_call_at(schedule, datetime(2025, 1, 7, 2, tzinfo=BERLIN)).person == "b"


def test_shifts_run_across_month_ends_and_the_leap_day() -> None:
    start = datetime(2024, 1, 30, 9, tzinfo=BERLIN)
    schedule = Schedule(BERLIN, (layer("a,b", 2, ShiftUnit.DAYS, "09:00", start),))

    january = on_call_at(schedule, datetime(2024, 1, 31, 23, tzinfo=BERLIN))
    leap = on_call_at(schedule, datetime(2024, 2, 29, 12, tzinfo=BERLIN))

    assert (january.person, january.end) == ("a", datetime(2024, 2, 1, 9, tzinfo=BERLIN))
    # 30 Jan + 15 shifts of two days = 29 Feb: shift 15 is b's.
    assert (leap.person, leap.start) == ("b", datetime(2024, 2, 29, 9, tzinfo=BERLIN))
    assert leap.end == datetime(2024, 3, 2, 9, tzinfo=BERLIN)


# ---------------------------------------------------------------- layers and overrides


def test_higher_layer_wins_only_while_it_is_active() -> None:
    base = layer("a,b", 1, ShiftUnit.WEEKS)
    cover = layer(
        "x",
        1,
        ShiftUnit.DAYS,
        "18:00",
        datetime(2025, 3, 19, 18, tzinfo=BERLIN),
        end=datetime(2025, 3, 21, 18, tzinfo=BERLIN),
    )
    schedule = Schedule(BERLIN, (base, cover))

    before = on_call_at(schedule, datetime(2025, 3, 18, tzinfo=BERLIN))
    during = on_call_at(schedule, datetime(2025, 3, 20, 20, tzinfo=BERLIN))
    after = on_call_at(schedule, datetime(2025, 3, 22, tzinfo=BERLIN))

    assert (before.person, before.end) == ("a", datetime(2025, 3, 19, 18, tzinfo=BERLIN))
    assert (during.person, during.index) == ("x", 1)
    assert during.start == datetime(2025, 3, 20, 18, tzinfo=BERLIN)
    assert (after.person, after.start) == ("a", datetime(2025, 3, 21, 18, tzinfo=BERLIN))
    assert after.end == datetime(2025, 3, 24, 9, tzinfo=BERLIN)


def test_layer_that_ended_leaves_a_gap_with_an_open_end() -> None:
    ended = layer(end=datetime(2025, 4, 1, tzinfo=BERLIN))

    gap = on_call_at(Schedule(BERLIN, (ended,)), datetime(2025, 5, 1, tzinfo=BERLIN))

    assert gap.is_gap and gap.source == "gap"
    assert (gap.start, gap.end) == (datetime(2025, 4, 1, tzinfo=BERLIN), None)


def test_override_splits_a_shift_and_the_shift_resumes_after_it() -> None:
    override = Override(
        "c", datetime(2025, 3, 19, 12, tzinfo=BERLIN), datetime(2025, 3, 20, 12, tzinfo=BERLIN)
    )
    schedule = Schedule(BERLIN, (layer(),), (override,))

    covering = list(
        stretches(schedule, datetime(2025, 3, 17, 9, tzinfo=BERLIN), utc(2025, 3, 24, 8))
    )

    assert [(s.person, s.source, s.start, s.end) for s in covering] == [
        ("a", "layer", utc(2025, 3, 17, 8), override.start),
        ("c", "override", override.start, override.end),
        ("a", "layer", override.end, utc(2025, 3, 24, 8)),
    ]


def test_later_override_beats_an_earlier_one_it_overlaps() -> None:
    first = Override("c", utc(2025, 3, 19), utc(2025, 3, 21))
    second = Override("d", utc(2025, 3, 20), utc(2025, 3, 20, 6))
    schedule = Schedule(BERLIN, (layer(),), (first, second))

    assert [(s.person, s.start) for s in stretches(schedule, first.start, first.end)] == [
        ("c", utc(2025, 3, 19)),
        ("d", utc(2025, 3, 20)),
        ("c", utc(2025, 3, 20, 6)),
    ]


def test_override_fills_a_gap_before_any_layer_starts() -> None:
    cover = Override("c", utc(2025, 1, 1), utc(2025, 1, 2))
    schedule = Schedule(load_zone("UTC"), (), (cover,))

    assert on_call_at(schedule, utc(2024, 12, 31)).end == utc(2025, 1, 1)
    assert on_call_at(schedule, utc(2025, 1, 1, 5)).person == "c"
    assert on_call_at(schedule, utc(2025, 1, 3)).start == utc(2025, 1, 2)


def test_next_different_skips_consecutive_shifts_of_the_same_person() -> None:
    schedule = Schedule(BERLIN, (layer("a,a,b"),))

    following = next_different(schedule, datetime(2025, 3, 18, tzinfo=BERLIN))

    assert following is not None
    assert (following.person, following.start) == ("b", utc(2025, 3, 31, 7))


def test_single_person_forever_has_no_next() -> None:
    schedule = Schedule(BERLIN, (layer("a"),))

    assert next_different(schedule, datetime(2025, 3, 18, tzinfo=BERLIN), limit=5) is None


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mon 09:00", Handoff(datetime(2000, 1, 1, 9).time(), 0)),
        ("Sunday 23:59", Handoff(datetime(2000, 1, 1, 23, 59).time(), 6)),
        ("7:30", Handoff(datetime(2000, 1, 1, 7, 30).time(), None)),
    ],
)
def test_handoffs_parse(text: str, expected: Handoff) -> None:
    assert parse_handoff(text) == expected


@pytest.mark.parametrize("text", ["", "funday 09:00", "25:00", "mon 9:61", "a b c", "mon"])
def test_bad_handoffs_are_refused(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_handoff(text)


def test_invalid_layers_overrides_and_zones_are_refused() -> None:
    with pytest.raises(ScheduleError, match="member"):
        Layer((), 1, ShiftUnit.DAYS, parse_handoff("09:00"), utc(2025, 1, 1))
    with pytest.raises(ScheduleError, match="1 to"):
        layer(count=0)
    with pytest.raises(ScheduleError, match="1 to"):
        layer(count=10**9)
    with pytest.raises(ScheduleError, match="time zone"):
        layer(start=datetime(2025, 1, 1))
    with pytest.raises(ScheduleError, match="end after"):
        Override("c", utc(2025, 1, 2), utc(2025, 1, 1))
    with pytest.raises(ScheduleError, match="Unknown time zone"):
        load_zone("Mars/Olympus")
