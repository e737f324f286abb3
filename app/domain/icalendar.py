"""iCalendar (RFC 5545) text for on-call feeds, written by hand: a few properties, right.

What matters to calendar apps: CRLF line ends; content lines folded at 75 octets (not
characters) with a leading space on each continuation, never inside a UTF-8 sequence;
TEXT values with backslash, semicolon, comma and newline escaped; times in UTC ("Z");
a UID per event that stays the same from one fetch to the next, so apps update events
instead of duplicating them; DTSTAMP on every event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

MAX_OCTETS = 75
PRODID = "-//Sentry Incident Bridge//On-call feed//EN"


@dataclass(frozen=True)
class CalendarEvent:
    uid: str
    start: datetime
    end: datetime
    summary: str
    description: str = ""


def escape_text(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """Split a content line into CRLF-joined pieces of at most 75 octets each."""
    pieces: list[str] = []
    current, size = "", 0
    limit = MAX_OCTETS
    for character in line:
        width = len(character.encode("utf-8"))
        if size + width > limit:
            pieces.append(current)
            # A continuation starts with one space, which counts towards its 75 octets.
            current, size, limit = character, width, MAX_OCTETS - 1
        else:
            current += character
            size += width
    pieces.append(current)
    return "\r\n ".join(pieces)


def utc_stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def stable_uid(*parts: object, domain: str = "sentry-incident-bridge") -> str:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return f"{digest[:32]}@{domain}"


def calendar(name: str, events: Iterable[CalendarEvent], stamped_at: datetime) -> str:
    """A VCALENDAR of the events, ready to serve as text/calendar."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(name)}",
    ]
    for event in events:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{event.uid}",
            f"DTSTAMP:{utc_stamp(stamped_at)}",
            f"DTSTART:{utc_stamp(event.start)}",
            f"DTEND:{utc_stamp(event.end)}",
            f"SUMMARY:{escape_text(event.summary)}",
        ]
        if event.description:
            lines.append(f"DESCRIPTION:{escape_text(event.description)}")
        lines += ["TRANSP:TRANSPARENT", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
