"""Which lifecycle transition a delivery causes (SPEC 4.3). Pure: state and clock come in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from app.domain.errors import IllegalTransition
from app.domain.severity import Severity


class Status(StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Step(StrEnum):
    """What the service must do; the values are the `action` answered to the sender."""

    CREATE = "triggered"
    ADD_EVENT = "deduplicated"
    REOPEN = "reopened"
    ACKNOWLEDGE = "acknowledged"
    RESOLVE = "resolved"
    COMMENT = "commented"
    IGNORE = "ignored"


@dataclass(frozen=True)
class IncidentState:
    """The part of an incident the lifecycle rules look at."""

    status: Status
    severity: Severity
    last_transition_at: datetime
    last_event_at: datetime | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class Decision:
    step: Step
    matched: bool
    reason: str | None = None
    # For ADD_EVENT: whether this trigger is the newest so far and sets the severity.
    is_latest_event: bool = True


def decide_trigger(
    open_incident: IncidentState | None,
    latest_resolved: IncidentState | None,
    at: datetime,
    reopen_window: timedelta,
    can_reopen: bool = True,
) -> Decision:
    """A trigger adds to the open incident, reopens a recent one, or opens a new one.

    `can_reopen` is False for news that Sentry sends once per issue (its `issue.created`):
    with an incident for the issue already resolved, it is a re-send, and neither reopens
    it nor opens another.
    """
    if open_incident is not None:
        is_latest = open_incident.last_event_at is None or at >= open_incident.last_event_at
        return Decision(Step.ADD_EVENT, matched=True, is_latest_event=is_latest)
    if latest_resolved is not None:
        resolved_at = latest_resolved.resolved_at or latest_resolved.last_transition_at
        # An event must be strictly newer than the resolution to regress the issue:
        # a late `created` carries the same or an older time and must not reopen it.
        if at <= resolved_at:
            return Decision(
                Step.IGNORE,
                matched=True,
                reason=(
                    f"stale delivery: the incident was resolved at {resolved_at.isoformat()}, "
                    f"after this event ({at.isoformat()})"
                ),
            )
        if not can_reopen:
            return Decision(
                Step.IGNORE,
                matched=True,
                reason=(
                    "Sentry sends issue.created once per issue, so this one is a re-send: the "
                    "incident stays resolved (a regression arrives as issue.unresolved)"
                ),
            )
        if at - resolved_at < reopen_window:
            return Decision(Step.REOPEN, matched=True)
    return Decision(Step.CREATE, matched=False)


def decide_acknowledge(
    open_incident: IncidentState | None, at: datetime, assigns: bool = False
) -> Decision:
    """Acknowledge an open incident unless this delivery is older than its last transition.

    An assignment to an incident that is already acknowledged still counts: the assignee
    is news even when the status is not.
    """
    refusal = _refuse_stale_or_missing(open_incident, at, "acknowledge")
    if refusal is not None:
        return refusal
    assert open_incident is not None
    if open_incident.status is Status.ACKNOWLEDGED and not assigns:
        return Decision(Step.IGNORE, matched=True, reason="the incident is already acknowledged")
    return Decision(Step.ACKNOWLEDGE, matched=True)


def decide_resolve(open_incident: IncidentState | None, at: datetime) -> Decision:
    """Resolve an open incident unless this delivery is older than its last transition."""
    refusal = _refuse_stale_or_missing(open_incident, at, "resolve")
    if refusal is not None:
        return refusal
    return Decision(Step.RESOLVE, matched=True)


def decide_comment(open_incident: IncidentState | None) -> Decision:
    if open_incident is None:
        return Decision(Step.IGNORE, matched=False, reason="no open incident for this issue")
    return Decision(Step.COMMENT, matched=True)


def _refuse_stale_or_missing(
    open_incident: IncidentState | None, at: datetime, verb: str
) -> Decision | None:
    if open_incident is None:
        return Decision(Step.IGNORE, matched=False, reason=f"no open incident to {verb}")
    if at < open_incident.last_transition_at:
        return Decision(
            Step.IGNORE,
            matched=True,
            reason=(
                f"stale delivery: the incident changed at "
                f"{open_incident.last_transition_at.isoformat()}, after this delivery "
                f"({at.isoformat()})"
            ),
        )
    return None


class HumanAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    REOPEN = "reopen"


_HUMAN_TRANSITIONS: dict[tuple[HumanAction, Status], Status] = {
    (HumanAction.ACKNOWLEDGE, Status.TRIGGERED): Status.ACKNOWLEDGED,
    (HumanAction.RESOLVE, Status.TRIGGERED): Status.RESOLVED,
    (HumanAction.RESOLVE, Status.ACKNOWLEDGED): Status.RESOLVED,
    (HumanAction.REOPEN, Status.RESOLVED): Status.TRIGGERED,
}

_REFUSALS: dict[tuple[HumanAction, Status], str] = {
    (HumanAction.ACKNOWLEDGE, Status.ACKNOWLEDGED): "The incident is already acknowledged.",
    (HumanAction.ACKNOWLEDGE, Status.RESOLVED): (
        "A resolved incident cannot be acknowledged; reopen it first."
    ),
    (HumanAction.RESOLVE, Status.RESOLVED): "The incident is already resolved.",
    (HumanAction.REOPEN, Status.TRIGGERED): "Only a resolved incident can be reopened; it is open.",
    (HumanAction.REOPEN, Status.ACKNOWLEDGED): (
        "Only a resolved incident can be reopened; it is acknowledged."
    ),
}


def human_transition(action: HumanAction, current: Status) -> Status:
    """The status a person's action leads to, or IllegalTransition saying why not."""
    target = _HUMAN_TRANSITIONS.get((action, current))
    if target is None:
        raise IllegalTransition(
            _REFUSALS[(action, current)], current_status=current.value, requested=action.value
        )
    return target
