"""Which incident events reach which channels, and when to try again (SPEC 7). Pure.

The rules, in order, for one event and one channel:
1. the channel is enabled, wants this event type, and the incident's severity is at
   least the channel's minimum;
2. an active silence of the service that matches the incident holds it back (`held`);
3. a `triggered` event during a storm of its service (more than `threshold` new incidents
   within `window`) is not sent alone: the channel gets one `incidents.digest` for the
   storm window instead, unless it already has one for that window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from app.domain.incident import SEVERITY_RANK, IncidentEvent

DEFAULT_EVENTS = frozenset(
    {
        IncidentEvent.TRIGGERED,
        IncidentEvent.REOPENED,
        IncidentEvent.SEVERITY_RAISED,
        IncidentEvent.RESOLVED,
    }
)
DIGEST_TYPE = "incidents.digest"
TEST_TYPE = "test"


def notification_type(event: IncidentEvent) -> str:
    """The message type of an incident event: `incident.triggered`, ..."""
    return f"incident.{event.value}"


def parse_events(text: str | Iterable[str]) -> frozenset[IncidentEvent]:
    """Event names (comma-separated or a list) as events; ValueError names a bad one."""
    names = text.split(",") if isinstance(text, str) else list(text)
    events = set()
    for name in (n.strip() for n in names):
        if not name:
            continue
        try:
            events.add(IncidentEvent(name))
        except ValueError:
            known = ", ".join(e.value for e in IncidentEvent)
            raise ValueError(f"unknown event {name!r} (known: {known})") from None
    return frozenset(events)


@dataclass(frozen=True)
class ChannelRule:
    """What decides whether a channel hears of an event."""

    id: int
    min_severity: str = "error"
    events: frozenset[IncidentEvent] = DEFAULT_EVENTS
    enabled: bool = True


@dataclass(frozen=True)
class SilenceRule:
    id: int
    starts_at: datetime
    ends_at: datetime
    match_text: str | None = None
    ended_at: datetime | None = None
    reason: str = ""
    dedup_key: str | None = None  # exactly this incident key ("Silence this issue")


@dataclass(frozen=True)
class IncidentFacts:
    """The part of an incident the rules look at."""

    title: str
    dedup_key: str
    severity: str


def reaches(channel: ChannelRule, event: IncidentEvent, severity: str) -> bool:
    """Rule 1: an enabled channel that wants the event, at or above its minimum severity."""
    if not channel.enabled or event not in channel.events:
        return False
    return SEVERITY_RANK.get(severity, 2) >= SEVERITY_RANK.get(channel.min_severity, 2)


def is_active(silence: SilenceRule, now: datetime) -> bool:
    return silence.ended_at is None and silence.starts_at <= now < silence.ends_at


def silences_incident(silence: SilenceRule, incident: IncidentFacts, now: datetime) -> bool:
    """Rule 2: active, for this dedup key if it names one, and service-wide or its text
    is in the title or the dedup key (case-insensitive)."""
    if not is_active(silence, now):
        return False
    if silence.dedup_key is not None and silence.dedup_key != incident.dedup_key:
        return False
    if not silence.match_text:
        return True
    needle = silence.match_text.casefold()
    return needle in incident.title.casefold() or needle in incident.dedup_key.casefold()


def holding_silence(
    silences: Iterable[SilenceRule], incident: IncidentFacts, now: datetime
) -> SilenceRule | None:
    """The silence that holds the incident's notifications back (the one ending last)."""
    matching = [s for s in silences if silences_incident(s, incident, now)]
    return max(matching, key=lambda s: (s.ends_at, s.id)) if matching else None


@dataclass(frozen=True)
class StormRule:
    threshold: int = 10
    window: timedelta = timedelta(minutes=5)


def is_storm(new_incidents_in_window: int, rule: StormRule) -> bool:
    """Rule 3: more than `threshold` new incidents (this one included) within the window."""
    return new_incidents_in_window > rule.threshold


class Route(StrEnum):
    SEND = "send"
    HOLD = "hold"
    DIGEST = "digest"


@dataclass(frozen=True)
class Routed:
    channel_id: int
    event: IncidentEvent
    route: Route
    silence: SilenceRule | None = None


@dataclass(frozen=True)
class Plan:
    routed: tuple[Routed, ...] = field(default_factory=tuple)

    def of(self, route: Route) -> list[Routed]:
        return [r for r in self.routed if r.route is route]


def plan_notifications(
    events: Sequence[IncidentEvent],
    incident: IncidentFacts,
    channels: Sequence[ChannelRule],
    silences: Sequence[SilenceRule],
    is_storming: bool,
    now: datetime,
) -> Plan:
    """Which channel gets what for the events of one incident change."""
    silence = holding_silence(silences, incident, now)
    routed: list[Routed] = []
    for event in events:
        for channel in channels:
            if not reaches(channel, event, incident.severity):
                continue
            if silence is not None:
                routed.append(Routed(channel.id, event, Route.HOLD, silence))
            elif is_storming and event is IncidentEvent.TRIGGERED:
                routed.append(Routed(channel.id, event, Route.DIGEST))
            else:
                routed.append(Routed(channel.id, event, Route.SEND))
    return Plan(tuple(routed))


# ---------------------------------------------------------------- retries

RETRY_BASE = timedelta(seconds=2)
RETRY_CAP = timedelta(minutes=10)


def backoff(attempts: int, jitter: float, retry_after: float | None = None) -> timedelta:
    """The wait after `attempts` failed tries: 2 s, 4 s, 8 s ... capped at 10 min, with
    "equal jitter" (half fixed, half random: `jitter` in [0, 1)), and never sooner than
    the receiver's Retry-After."""
    exponent = min(max(attempts - 1, 0), 20)
    delay: timedelta = min(RETRY_BASE * (2**exponent), RETRY_CAP)
    delay = delay / 2 + delay / 2 * min(max(jitter, 0.0), 1.0)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


def next_attempt_at(
    created_at: datetime,
    now: datetime,
    attempts: int,
    jitter: float,
    retry_window: timedelta,
    retry_after: float | None = None,
) -> datetime | None:
    """When to try a transient failure again; None once that would pass the retry window
    (an hour by default) counted from the notification's creation: it has failed."""
    at = now + backoff(attempts, jitter, retry_after)
    return at if at <= created_at + retry_window else None
