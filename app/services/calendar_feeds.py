"""iCalendar feeds of on-call shifts: one per schedule, one per person (secret URLs)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.domain import schedule as domain
from app.domain.icalendar import CalendarEvent, calendar, stable_uid
from app.services import schedules
from app.store.models import Schedule, User

FEED_LENGTH = timedelta(weeks=8)


def _events(schedule: Schedule, now: datetime, email: str | None) -> list[CalendarEvent]:
    model = schedules.as_domain(schedule)
    current = domain.on_call_at(model, now)
    # Start at the current stretch's true start so the first event (and its UID) is the
    # same on every fetch, not cut at the moment of the request.
    start = current.start or now
    events = []
    for stretch in domain.stretches(model, start, now + FEED_LENGTH):
        assert stretch.start is not None and stretch.end is not None
        if email is not None and stretch.person != email:
            continue
        unbounded_start = stretch.start == start and current.start is None
        key = ("until", stretch.end) if unbounded_start else ("from", stretch.start)
        if stretch.person is None:
            summary = f"Nobody on call ({schedule.name})"
        elif email is None:
            summary = f"On call: {stretch.person} ({schedule.name})"
        else:
            summary = f"On call for {schedule.name}"
        events.append(
            CalendarEvent(
                uid=stable_uid(schedule.id, stretch.person or "gap", *key),
                start=stretch.start,
                end=stretch.end,
                summary=summary,
                description=f"Schedule {schedule.name} ({schedule.timezone}), {stretch.source}.",
            )
        )
    return events


def schedule_feed(schedule: Schedule, now: datetime) -> str:
    """Every stretch of the next eight weeks, gaps included (they need filling)."""
    return calendar(f"On call: {schedule.name}", _events(schedule, now, None), now)


def person_feed(session: Session, user: User, now: datetime) -> str:
    """The person's own shifts, over every schedule they are in, for the next eight weeks."""
    events = [
        event
        for schedule in schedules.schedules_of(session, user)
        for event in _events(schedule, now, user.email)
    ]
    events.sort(key=lambda event: (event.start, event.uid))
    return calendar(f"On call: {user.email}", events, now)
