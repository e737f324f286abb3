"""iCalendar text: folding at 75 octets, TEXT escaping, UTC times, and a parser agreeing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
from hypothesis import given
from hypothesis import strategies as st

from app.domain.icalendar import CalendarEvent, calendar, escape_text, fold, stable_uid

START = datetime(2025, 3, 30, 1, tzinfo=UTC)


def test_text_escapes_backslash_semicolon_comma_and_newlines() -> None:
    assert escape_text("a\\b;c,d\ne\r\nf") == "a\\\\b\\;c\\,d\\ne\\nf"


def test_short_lines_are_not_folded() -> None:
    assert fold("SUMMARY:short") == "SUMMARY:short"


def test_long_lines_fold_at_75_octets_without_splitting_a_character() -> None:
    line = "SUMMARY:" + "ü" * 100  # two octets each

    pieces = fold(line).split("\r\n")

    assert all(len(piece.encode("utf-8")) <= 75 for piece in pieces)
    assert all(piece.startswith(" ") for piece in pieces[1:])
    assert "".join(piece.removeprefix(" ") for piece in pieces) == line


@given(st.text(min_size=0, max_size=400))
def test_folding_round_trips_any_text(text: str) -> None:
    line = "DESCRIPTION:" + escape_text(text)

    folded = fold(line)

    assert all(len(p.encode("utf-8")) <= 75 for p in folded.split("\r\n"))
    assert folded.replace("\r\n ", "") == line


def test_calendar_parses_back_with_the_same_events() -> None:
    events = [
        CalendarEvent(
            stable_uid(1, "a", START),
            START,
            START + timedelta(hours=169),
            "On call: a@example.com (primary, EU; night\\day)",
            "Line one\nline two " + "long " * 40,
        )
    ]

    text = calendar("On call: primary", events, START)
    parsed = icalendar.Calendar.from_ical(text)
    [event] = parsed.walk("VEVENT")

    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    assert str(parsed["VERSION"]) == "2.0"
    assert str(event["UID"]) == events[0].uid
    assert event.decoded("DTSTART") == START
    assert event.decoded("DTEND") == START + timedelta(hours=169)
    assert str(event["SUMMARY"]) == events[0].summary
    assert str(event["DESCRIPTION"]) == events[0].description
    assert "DTSTAMP:20250330T010000Z" in text


def test_uids_are_stable_for_the_same_parts_and_differ_otherwise() -> None:
    assert stable_uid(1, "a", START) == stable_uid(1, "a", START)
    assert stable_uid(1, "a", START) != stable_uid(2, "a", START)
    assert stable_uid(1, "a", START).endswith("@sentry-incident-bridge")
