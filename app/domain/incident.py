"""Every change to an incident, decided in one place (SPEC 7): new fields, timeline notes,
and the incident events that notifications hang off.

Sentry deliveries (ingest), people (web, API, an acknowledge link) and jobs all describe
what happened as a cause and get back a `Change`; they only write it. Pure: the clock and
the incident's current fields come in as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.domain.errors import IllegalTransition
from app.domain.lifecycle import HumanAction, Status, Step, human_transition
from app.domain.links import may_replace_link
from app.domain.severity import Severity

SENTRY_ACTOR = "Sentry"


class IncidentEvent(StrEnum):
    """What happened to an incident that someone may want to hear about."""

    TRIGGERED = "triggered"
    REOPENED = "reopened"
    SEVERITY_RAISED = "severity_raised"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


# Higher is worse; a rise is news, a fall is not.
SEVERITY_RANK = {
    Severity.INFO.value: 0,
    Severity.WARNING.value: 1,
    Severity.ERROR.value: 2,
    Severity.CRITICAL.value: 3,
}


def is_more_severe(new: str, old: str) -> bool:
    return SEVERITY_RANK.get(new, 2) > SEVERITY_RANK.get(old, 2)


@dataclass(frozen=True)
class Note:
    """A timeline entry a change writes."""

    kind: str
    actor: str
    message: str
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class Change:
    """What to write: changed columns (all columns for a new incident), notes, events."""

    fields: dict[str, Any]
    notes: tuple[Note, ...] = ()
    events: tuple[IncidentEvent, ...] = ()


@dataclass(frozen=True)
class SentryNews:
    """What one Sentry delivery says about the incident, as the lifecycle decided it."""

    step: Step
    severity: str = Severity.ERROR.value
    title: str = "Sentry Error"
    source: str = "Sentry"
    dedup_key: str | None = None
    resource: str = "issue"
    action: str | None = None
    actor: str | None = None
    assignee: str | None = None
    comment: str | None = None
    # A comment-like note (a Sentry comment, an activity alert, a Seer finding): its kind.
    note_kind: str = "comment"
    note_data: dict[str, Any] | None = None
    # The substatus (archived_until_escalating, regressed, escalating, ...).
    substatus: str | None = None
    # Whether this event is the newest so far (only the newest sets title and severity).
    is_latest_event: bool = True
    # The Sentry identifiers the delivery names; an absent one never erases a known one.
    links: Mapping[str, str] = field(default_factory=dict)
    # What the payload says of the issue or event (culprit, environment, release, platform,
    # tags, counts, the event's own time): the same rule, an absent one erases nothing.
    facts: Mapping[str, Any] = field(default_factory=dict)
    # The bridge's own test alert: set when it opens the incident, never changed after.
    is_test: bool = False
    # The delivery gives its project's name, not only the slug: an incident named by the
    # slug (or an old name) takes `source` from it when an event is added or it reopens.
    names_project: bool = False


@dataclass(frozen=True)
class PersonAction:
    """A person (web, API) or a signed link acts on an incident."""

    action: HumanAction
    actor: str
    # How it came: None for the web and the API, e.g. "notification link to ops-webhook".
    via: str | None = None


@dataclass(frozen=True)
class Assignment:
    """A person (web, API, CLI) assigns the incident to a user, or unassigns it (None)."""

    assignee: str | None
    actor: str


@dataclass(frozen=True)
class JobAction:
    """A job acts on an incident. So far one: the acknowledgement timeout re-triggers an
    incident acknowledged `timeout_minutes` ago and not resolved (docs/on-call.md)."""

    acknowledged_at: datetime
    timeout_minutes: int
    actor: str = "escalation"


Cause = SentryNews | PersonAction | Assignment | JobAction


def change_incident(
    current: Mapping[str, Any] | None, cause: Cause, at: datetime, now: datetime
) -> Change:
    """The one decision of what a cause does to an incident.

    `current` is the incident's fields (None: no incident yet, the cause opens one); `at`
    is when the news happened (a delivery's own time, or now for a person); `now` is the
    clock for bookkeeping columns. People's illegal transitions raise IllegalTransition.
    """
    if isinstance(cause, PersonAction):
        if current is None:
            raise IllegalTransition("There is no incident to act on.")
        return _person(current, cause, now)
    if isinstance(cause, JobAction):
        if current is None:
            raise IllegalTransition("There is no incident to act on.")
        return _ack_timed_out(current, cause, now)
    if isinstance(cause, Assignment):
        if current is None:
            raise IllegalTransition("There is no incident to assign.")
        return _assigned(current, cause, now)
    if cause.step is Step.CREATE or current is None:
        return _opened(cause, at, now)
    return _from_sentry(current, cause, at, now)


# The columns a Sentry payload's facts fill (SentryNews.facts), empty on a new incident.
FACT_COLUMNS = (
    "culprit",
    "environment",
    "release",
    "platform",
    "tags",
    "sentry_count",
    "sentry_user_count",
    "event_at",
)


def opened_fields(
    *, dedup_key: str | None, title: str, source: str, severity: str, at: datetime, now: datetime
) -> dict[str, Any]:
    """The columns of a new triggered incident with its first event at `at`.

    `triggered_at` is when the bridge opened it (`now`), whatever the event's own time
    says: a legacy event stamped last January, delivered today, triggers today. The event's
    time is `first_event_at`/`last_event_at` (for the lifecycle) and `event_at` (as said).
    """
    return {
        "dedup_key": dedup_key,
        "title": title,
        "source": source,
        "severity": severity,
        "status": Status.TRIGGERED.value,
        "event_count": 1,
        "first_event_at": at,
        "last_event_at": at,
        "triggered_at": now,
        "acknowledged_at": None,
        "resolved_at": None,
        "last_transition_at": at,
        "reopen_count": 0,
        "assignee": None,
        "sentry_issue_id": None,
        "sentry_short_id": None,
        "sentry_issue_url": None,
        "sentry_project": None,
        "created_at": now,
        "updated_at": now,
        **dict.fromkeys(FACT_COLUMNS),
        "is_test": False,
    }


def _opened(news: SentryNews, at: datetime, now: datetime) -> Change:
    fields = opened_fields(
        dedup_key=news.dedup_key,
        title=news.title,
        source=news.source,
        severity=news.severity,
        at=at,
        now=now,
    )
    fields.update(news.links)
    fields.update(news.facts)
    fields["is_test"] = news.is_test
    note = Note(
        "triggered",
        SENTRY_ACTOR,
        f"Triggered by Sentry {news.resource} ({news.severity}{_said(news, ', ')}): {news.title}",
        _substatus_data(news),
    )
    return Change(fields, (note,), (IncidentEvent.TRIGGERED,))


def _from_sentry(
    current: Mapping[str, Any], news: SentryNews, at: datetime, now: datetime
) -> Change:
    step = news.step
    if step is Step.IGNORE:
        return Change({})
    actor = news.actor or SENTRY_ACTOR
    fields: dict[str, Any] = {"updated_at": now}
    notes: list[Note] = []
    events: list[IncidentEvent] = []
    status = current["status"]
    # What the event changes (severity, title) is written after the entry for the event
    # itself (re-triggered, reopened): the timeline reads in the order things happened.
    consequences: list[Note] = []
    if step in {Step.ADD_EVENT, Step.REOPEN}:
        fields["event_count"] = current["event_count"] + 1
        fields["last_event_at"] = max(current["last_event_at"], at)
        fields.update(_links_to_take(current, news.links))
        if news.names_project and current["source"] != news.source:
            fields["source"] = news.source
        if news.is_latest_event:
            fields.update(news.facts)
            old = current["severity"]
            if old != news.severity:
                consequences.append(
                    Note(
                        "severity_changed",
                        SENTRY_ACTOR,
                        f"Severity {old} → {news.severity}",
                        {"from": old, "to": news.severity},
                    )
                )
                fields["severity"] = news.severity
                # A reopen is news enough on its own; a rise of a resolved one is not open.
                if step is Step.ADD_EVENT and is_more_severe(news.severity, old):
                    events.append(IncidentEvent.SEVERITY_RAISED)
            if current["title"] != news.title:
                consequences.append(
                    Note(
                        "title_changed",
                        SENTRY_ACTOR,
                        f"Title changed from {_quoted(current['title'])} to {_quoted(news.title)}",
                        {
                            "from": current["title"][:_TITLE_IN_DATA],
                            "to": news.title[:_TITLE_IN_DATA],
                        },
                    )
                )
            fields["title"] = news.title
    elif step in {Step.ACKNOWLEDGE, Step.RESOLVE}:
        # A status change carries the newest counts too; never its event's time.
        fields.update({k: v for k, v in news.facts.items() if k != "event_at"})
    if step is Step.ADD_EVENT:
        notes.append(
            Note(
                "retriggered",
                SENTRY_ACTOR,
                f"Sentry {news.resource} {news.action or 'event'}{_said(news, ', ')}: "
                f"event {fields['event_count']}",
                {"event_count": fields["event_count"], **(_substatus_data(news) or {})},
            )
        )
    elif step is Step.REOPEN:
        reopen_count = current["reopen_count"] + 1
        fields.update(
            status=Status.TRIGGERED.value,
            reopen_count=reopen_count,
            # When the bridge reopened it; `at` (the event's time) is the lifecycle's clock.
            triggered_at=now,
            acknowledged_at=None,
            resolved_at=None,
            last_transition_at=at,
        )
        notes.append(
            Note(
                "reopened",
                SENTRY_ACTOR,
                f"Reopened: Sentry saw the issue again ({news.resource} "
                f"{news.action or 'event'}{_said(news, ', ')})",
                {"reopen_count": reopen_count, **(_substatus_data(news) or {})},
            )
        )
        events.append(IncidentEvent.REOPENED)
    elif step is Step.ACKNOWLEDGE:
        if status != Status.ACKNOWLEDGED.value:
            fields.update(
                status=Status.ACKNOWLEDGED.value, acknowledged_at=at, last_transition_at=at
            )
            notes.append(
                Note(
                    "acknowledged",
                    actor,
                    f"Acknowledged in Sentry ({news.action or 'ignored'}{_said(news, ': ')})",
                    _substatus_data(news),
                )
            )
            events.append(IncidentEvent.ACKNOWLEDGED)
        if news.assignee is not None and news.assignee != current["assignee"]:
            fields["assignee"] = news.assignee
            notes.append(
                Note(
                    "assigned",
                    actor,
                    f"Assigned to {news.assignee} in Sentry",
                    {"assignee": news.assignee},
                )
            )
    elif step is Step.RESOLVE:
        fields.update(status=Status.RESOLVED.value, resolved_at=at, last_transition_at=at)
        notes.append(
            Note(
                "resolved",
                actor,
                f"Resolved in Sentry ({news.resource} {news.action or 'resolved'})",
            )
        )
        events.append(IncidentEvent.RESOLVED)
    elif step is Step.COMMENT:
        notes.append(Note(news.note_kind, actor, news.comment or "(empty comment)", news.note_data))
    notes.extend(consequences)
    return Change(fields, tuple(notes), tuple(events))


# A title change keeps both titles on the timeline, each cut to a line's worth.
_TITLE_IN_DATA = 1000
_TITLE_IN_MESSAGE = 300


def _quoted(title: str) -> str:
    shown = title if len(title) <= _TITLE_IN_MESSAGE else title[: _TITLE_IN_MESSAGE - 1] + "…"
    return f"“{shown}”"


def _assigned(current: Mapping[str, Any], cause: Assignment, now: datetime) -> Change:
    """Assign to a user or unassign; assigning to whom it already is changes nothing."""
    previous = current["assignee"]
    if cause.assignee == previous:
        return Change({})
    fields: dict[str, Any] = {"assignee": cause.assignee, "updated_at": now}
    if cause.assignee is None:
        message = f"Unassigned (was {previous}) by {cause.actor}"
        kind = "unassigned"
    else:
        message = f"Assigned to {cause.assignee} by {cause.actor}"
        kind = "assigned"
    data = {"assignee": cause.assignee, "previous": previous, "by": "person"}
    return Change(fields, (Note(kind, cause.actor, message, data),))


def _links_to_take(current: Mapping[str, Any], links: Mapping[str, str]) -> dict[str, str]:
    """The delivery's Sentry identifiers, less a link to another host than the one the
    incident has (once "Open in Sentry" works, no delivery can point it elsewhere)."""
    return {
        name: value
        for name, value in links.items()
        if name != "sentry_issue_url" or may_replace_link(current.get("sentry_issue_url"), value)
    }


# Substatuses worth a word on the timeline: why Sentry archived or regressed the issue.
_SUBSTATUS_WORDS = {
    "archived_until_escalating": "archived until escalating",
    "archived_until_condition_met": "archived until a condition is met",
    "archived_forever": "archived forever",
    "escalating": "escalating",
    "regressed": "regressed",
}


def _said(news: SentryNews, separator: str) -> str:
    """The issue's substatus as the timeline says it (SPEC 4.1), after `separator`; or
    nothing, for substatuses that add nothing (`new`, `ongoing`) and for non-issues."""
    words = _SUBSTATUS_WORDS.get(news.substatus or "")
    return f"{separator}{words}" if words is not None else ""


def _substatus_data(news: SentryNews) -> dict[str, Any] | None:
    return {"substatus": news.substatus} if news.substatus in _SUBSTATUS_WORDS else None


_PERSON_KINDS = {
    HumanAction.ACKNOWLEDGE: ("acknowledged", IncidentEvent.ACKNOWLEDGED),
    HumanAction.RESOLVE: ("resolved", IncidentEvent.RESOLVED),
    HumanAction.REOPEN: ("reopened", IncidentEvent.REOPENED),
}


def _person(current: Mapping[str, Any], cause: PersonAction, now: datetime) -> Change:
    target = human_transition(cause.action, Status(current["status"]))
    fields: dict[str, Any] = {"status": target.value, "last_transition_at": now, "updated_at": now}
    if cause.action is HumanAction.REOPEN:
        fields.update(
            reopen_count=current["reopen_count"] + 1,
            triggered_at=now,
            acknowledged_at=None,
            resolved_at=None,
        )
    elif target is Status.ACKNOWLEDGED:
        fields["acknowledged_at"] = now
    elif target is Status.RESOLVED:
        fields["resolved_at"] = now
    kind, event = _PERSON_KINDS[cause.action]
    message = f"{kind.capitalize()} by {cause.actor}"
    data: dict[str, Any] = {"by": "person"}
    if cause.via is not None:
        message += f" via {cause.via}"
        data = {"by": "link", "via": cause.via}
    return Change(fields, (Note(kind, cause.actor, message, data),), (event,))


def _ack_timed_out(current: Mapping[str, Any], cause: JobAction, now: datetime) -> Change:
    """Back to triggered, as a `reopened` event: channels hear that the incident needs
    someone again (with an acknowledge link) and the escalation starts over. Not a reopen
    count: it was never resolved. Nothing happens unless it is still acknowledged."""
    if current["status"] != Status.ACKNOWLEDGED.value:
        return Change({})
    fields: dict[str, Any] = {
        "status": Status.TRIGGERED.value,
        "triggered_at": now,
        "acknowledged_at": None,
        "last_transition_at": now,
        "updated_at": now,
    }
    note = Note(
        "ack_timeout",
        cause.actor,
        f"Re-triggered: acknowledged at {cause.acknowledged_at:%Y-%m-%d %H:%M} UTC and not"
        f" resolved within {cause.timeout_minutes} min (acknowledgement timeout)",
        {"acknowledged_at": cause.acknowledged_at.isoformat(), "minutes": cause.timeout_minutes},
    )
    return Change(fields, (note,), (IncidentEvent.REOPENED,))
