"""The secret iCalendar feeds of a schedule and of a person, parsed back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest
from flask.testing import FlaskClient

from app.domain.schedule import ShiftUnit
from app.extensions import Bridge
from app.services import calendar_feeds, schedules
from tests.support.oncall import make_people

MONDAY = datetime(2025, 3, 17, 8, tzinfo=UTC)  # 09:00 in Berlin


@pytest.fixture
def feed_tokens(bridge: Bridge) -> dict[str, str]:
    with bridge.database.transaction() as session:
        make_people(session, MONDAY, "a@x.example", "b@x.example")
        spec = schedules.LayerSpec(
            ["a@x.example", "b@x.example"], 1, ShiftUnit.WEEKS, "mon 09:00", MONDAY
        )
        created = schedules.create_schedule(
            session, bridge.secrets, "primary", "Europe/Berlin", spec, MONDAY
        )
        person = schedules.user_feed_token(
            session, bridge.secrets, schedules.find_user(session, "b@x.example")
        )
        return {"schedule": created.feed_token, "person": person}


def events_of(text: str) -> list[icalendar.Event]:
    return list(icalendar.Calendar.from_ical(text).walk("VEVENT"))


def test_schedule_feed_has_a_utc_event_per_shift_across_dst(
    bridge: Bridge, feed_tokens: dict[str, str]
) -> None:
    now = MONDAY + timedelta(days=2)
    with bridge.database.reading() as session:
        schedule = schedules.find_schedule(session, "primary")
        text = calendar_feeds.schedule_feed(schedule, now)

    events = events_of(text)
    starts = [event.decoded("DTSTART") for event in events]

    assert starts[0] == MONDAY  # the shift under way, from its real start
    assert starts[1] == datetime(2025, 3, 24, 8, tzinfo=UTC)
    assert starts[2] == datetime(2025, 3, 31, 7, tzinfo=UTC)  # 09:00 CEST
    assert [str(e["SUMMARY"]) for e in events[:2]] == [
        "On call: a@x.example (primary)",
        "On call: b@x.example (primary)",
    ]
    assert events[-1].decoded("DTEND") == now + calendar_feeds.FEED_LENGTH
    assert len(events) == 9  # eight weeks and the shift under way
    assert "DTSTART:20250317T080000Z" in text


def test_uids_stay_the_same_from_one_fetch_to_the_next(
    bridge: Bridge, feed_tokens: dict[str, str]
) -> None:
    with bridge.database.reading() as session:
        schedule = schedules.find_schedule(session, "primary")
        first = events_of(calendar_feeds.schedule_feed(schedule, MONDAY + timedelta(days=1)))
        later = events_of(calendar_feeds.schedule_feed(schedule, MONDAY + timedelta(days=3)))

    assert [str(e["UID"]) for e in first[:8]] == [str(e["UID"]) for e in later[:8]]
    assert len({str(e["UID"]) for e in first}) == len(first)


def test_feed_urls_serve_the_schedule_and_the_persons_own_shifts(
    client: FlaskClient, feed_tokens: dict[str, str]
) -> None:
    schedule = client.get(f"/calendars/schedules/{feed_tokens['schedule']}.ics")
    person = client.get(f"/calendars/people/{feed_tokens['person']}.ics")

    assert schedule.status_code == 200 and person.status_code == 200
    assert schedule.headers["Content-Type"] == "text/calendar; charset=utf-8"
    summaries = {str(e["SUMMARY"]) for e in events_of(person.get_data(as_text=True))}
    assert summaries == {"On call for primary"}
    assert len(events_of(schedule.get_data(as_text=True))) > len(
        events_of(person.get_data(as_text=True))
    )


def test_unknown_feed_tokens_are_404(client: FlaskClient, feed_tokens: dict[str, str]) -> None:
    assert client.get("/calendars/schedules/not-a-token.ics").status_code == 404
    assert client.get(f"/calendars/schedules/{feed_tokens['person']}.ics").status_code == 404
    assert client.get(f"/calendars/people/{feed_tokens['schedule']}.ics").status_code == 404


def test_schedule_feed_marks_gaps(bridge: Bridge, feed_tokens: dict[str, str]) -> None:
    with bridge.database.reading() as session:
        schedule = schedules.find_schedule(session, "primary")
        text = calendar_feeds.schedule_feed(schedule, MONDAY - timedelta(days=1))

    first = events_of(text)[0]
    assert str(first["SUMMARY"]) == "Nobody on call (primary)"
    assert first.decoded("DTEND") == MONDAY
