"""Lifecycle decisions (SPEC 4.3): create, add an event, reopen, acknowledge, resolve, ignore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.lifecycle import (
    Decision,
    IncidentState,
    Status,
    Step,
    decide_acknowledge,
    decide_comment,
    decide_resolve,
    decide_trigger,
)
from app.domain.severity import Severity

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=30)
SECOND = timedelta(seconds=1)


def incident(
    status: Status = Status.TRIGGERED,
    last_transition_at: datetime = T0,
    last_event_at: datetime | None = T0,
    resolved_at: datetime | None = None,
) -> IncidentState:
    return IncidentState(
        status=status,
        severity=Severity.ERROR,
        last_transition_at=last_transition_at,
        last_event_at=last_event_at,
        resolved_at=resolved_at,
    )


def resolved(at: datetime = T0) -> IncidentState:
    return incident(Status.RESOLVED, last_transition_at=at, resolved_at=at)


def test_step_values_are_the_actions_answered_to_sentry() -> None:
    assert Step.CREATE.value == "triggered"
    assert Step.ADD_EVENT.value == "deduplicated"
    assert Step.REOPEN.value == "reopened"
    assert Step.ACKNOWLEDGE.value == "acknowledged"
    assert Step.RESOLVE.value == "resolved"
    assert Step.IGNORE.value == "ignored"


# ------------------------------------------------------------------ decide_trigger


def test_trigger_without_any_incident_creates_one() -> None:
    decision = decide_trigger(None, None, T0, WINDOW)

    assert decision.step is Step.CREATE
    assert decision.matched is False


@pytest.mark.parametrize("status", [Status.TRIGGERED, Status.ACKNOWLEDGED])
def test_trigger_on_open_incident_adds_an_event(status: Status) -> None:
    decision = decide_trigger(incident(status), None, T0 + timedelta(minutes=5), WINDOW)

    assert decision.step is Step.ADD_EVENT
    assert decision.matched is True
    assert decision.is_latest_event is True


@pytest.mark.parametrize(
    ("offset", "is_latest"),
    [(timedelta(minutes=1), True), (timedelta(0), True), (-SECOND, False)],
)
def test_trigger_on_open_incident_is_latest_only_if_not_older_than_last_event(
    offset: timedelta, is_latest: bool
) -> None:
    decision = decide_trigger(incident(last_event_at=T0), None, T0 + offset, WINDOW)

    assert decision.step is Step.ADD_EVENT
    assert decision.is_latest_event is is_latest


def test_late_trigger_on_open_incident_still_counts_but_is_not_latest() -> None:
    decision = decide_trigger(incident(last_event_at=T0), None, T0 - timedelta(hours=3), WINDOW)

    assert decision.step is Step.ADD_EVENT
    assert decision.matched is True
    assert decision.is_latest_event is False


def test_trigger_on_open_incident_without_event_time_is_latest() -> None:
    decision = decide_trigger(incident(last_event_at=None), None, T0 - SECOND, WINDOW)

    assert decision.is_latest_event is True


@pytest.mark.parametrize(
    "after", [SECOND, timedelta(minutes=10), WINDOW + timedelta(days=3)], ids=str
)
def test_news_sent_once_per_issue_never_reopens_or_reopens_anew(after: timedelta) -> None:
    decision = decide_trigger(None, resolved(T0), T0 + after, WINDOW, can_reopen=False)

    assert decision.step is Step.IGNORE
    assert decision.matched is True
    assert decision.reason is not None
    assert "issue.created" in decision.reason
    assert "issue.unresolved" in decision.reason


def test_stale_news_sent_once_per_issue_is_still_called_stale() -> None:
    decision = decide_trigger(None, resolved(T0), T0 - SECOND, WINDOW, can_reopen=False)

    assert decision.step is Step.IGNORE
    assert decision.reason is not None
    assert "stale" in decision.reason


def test_news_sent_once_per_issue_opens_or_adds_like_any_other_trigger() -> None:
    assert decide_trigger(None, None, T0, WINDOW, can_reopen=False).step is Step.CREATE
    assert decide_trigger(incident(), None, T0, WINDOW, can_reopen=False).step is Step.ADD_EVENT


def test_open_incident_wins_over_a_resolved_one() -> None:
    decision = decide_trigger(incident(), resolved(T0 - SECOND), T0 + SECOND, WINDOW)

    assert decision.step is Step.ADD_EVENT


@pytest.mark.parametrize(
    "after", [SECOND, timedelta(minutes=10), WINDOW - timedelta(microseconds=1)]
)
def test_trigger_shortly_after_resolution_reopens(after: timedelta) -> None:
    decision = decide_trigger(None, resolved(T0), T0 + after, WINDOW)

    assert decision.step is Step.REOPEN
    assert decision.matched is True


@pytest.mark.parametrize("after", [WINDOW, WINDOW + SECOND, timedelta(days=3)])
def test_trigger_long_after_resolution_creates_a_new_incident(after: timedelta) -> None:
    decision = decide_trigger(None, resolved(T0), T0 + after, WINDOW)

    assert decision.step is Step.CREATE
    assert decision.matched is False


@pytest.mark.parametrize("before", [timedelta(0), SECOND, timedelta(hours=1)])
def test_trigger_at_or_before_resolution_is_ignored_as_stale(before: timedelta) -> None:
    decision = decide_trigger(None, resolved(T0), T0 - before, WINDOW)

    assert decision.step is Step.IGNORE
    assert decision.matched is True
    assert decision.reason is not None
    assert "stale" in decision.reason


def test_late_created_never_reopens_an_issue_resolved_after_it() -> None:
    created_at = T0
    resolved_at = T0 + timedelta(minutes=5)

    decision = decide_trigger(None, resolved(resolved_at), created_at, WINDOW)

    assert decision.step is not Step.REOPEN
    assert decision.step is Step.IGNORE


def test_resolution_time_falls_back_to_last_transition() -> None:
    latest = incident(Status.RESOLVED, last_transition_at=T0, resolved_at=None)

    assert decide_trigger(None, latest, T0, WINDOW).step is Step.IGNORE
    assert decide_trigger(None, latest, T0 + SECOND, WINDOW).step is Step.REOPEN
    assert decide_trigger(None, latest, T0 + WINDOW, WINDOW).step is Step.CREATE


def test_zero_reopen_window_never_reopens() -> None:
    decision = decide_trigger(None, resolved(T0), T0 + SECOND, timedelta(0))

    assert decision.step is Step.CREATE


# ------------------------------------------------------------------ acknowledge and resolve


def _acknowledge(state: IncidentState | None, at: datetime) -> Decision:
    return decide_acknowledge(state, at)


DECIDERS = {"acknowledge": _acknowledge, "resolve": decide_resolve}


@pytest.mark.parametrize("verb", sorted(DECIDERS))
def test_without_open_incident_nothing_is_matched(verb: str) -> None:
    decision = DECIDERS[verb](None, T0)

    assert decision.step is Step.IGNORE
    assert decision.matched is False
    assert decision.reason is not None
    assert verb in decision.reason


@pytest.mark.parametrize("verb", sorted(DECIDERS))
@pytest.mark.parametrize("older_by", [timedelta(microseconds=1), SECOND, timedelta(days=1)])
def test_delivery_older_than_last_transition_is_stale(verb: str, older_by: timedelta) -> None:
    decision = DECIDERS[verb](incident(last_transition_at=T0), T0 - older_by)

    assert decision.step is Step.IGNORE
    assert decision.matched is True
    assert decision.reason is not None
    assert "stale" in decision.reason


@pytest.mark.parametrize(
    ("verb", "step"), [("acknowledge", Step.ACKNOWLEDGE), ("resolve", Step.RESOLVE)]
)
@pytest.mark.parametrize("later_by", [timedelta(0), SECOND])
def test_delivery_at_or_after_last_transition_applies(
    verb: str, step: Step, later_by: timedelta
) -> None:
    decision = DECIDERS[verb](incident(last_transition_at=T0), T0 + later_by)

    assert decision.step is step
    assert decision.matched is True
    assert decision.reason is None


def test_acknowledging_an_acknowledged_incident_is_ignored() -> None:
    decision = decide_acknowledge(incident(Status.ACKNOWLEDGED), T0 + SECOND)

    assert decision.step is Step.IGNORE
    assert decision.matched is True
    assert decision.reason is not None
    assert "already acknowledged" in decision.reason


def test_assignment_to_an_acknowledged_incident_still_applies() -> None:
    decision = decide_acknowledge(incident(Status.ACKNOWLEDGED), T0 + SECOND, assigns=True)

    assert decision.step is Step.ACKNOWLEDGE
    assert decision.matched is True


def test_stale_assignment_is_ignored_even_when_it_assigns() -> None:
    decision = decide_acknowledge(incident(Status.ACKNOWLEDGED), T0 - SECOND, assigns=True)

    assert decision.step is Step.IGNORE
    assert decision.reason is not None
    assert "stale" in decision.reason


def test_resolving_an_acknowledged_incident_resolves_it() -> None:
    decision = decide_resolve(incident(Status.ACKNOWLEDGED), T0 + SECOND)

    assert decision.step is Step.RESOLVE


# ------------------------------------------------------------------ comment


def test_comment_without_open_incident_is_ignored_with_a_reason() -> None:
    decision = decide_comment(None)

    assert decision.step is Step.IGNORE
    assert decision.matched is False
    assert decision.reason


@pytest.mark.parametrize("status", [Status.TRIGGERED, Status.ACKNOWLEDGED])
def test_comment_on_open_incident_is_recorded(status: Status) -> None:
    decision = decide_comment(incident(status))

    assert decision.step is Step.COMMENT
    assert decision.matched is True


# ------------------------------------------------------------------ properties

TIMES = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
WINDOWS = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=7))
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None)


@PROPERTY_SETTINGS
@given(resolved_at=TIMES, at=TIMES, window=WINDOWS)
def test_trigger_after_resolution_is_stale_reopen_or_create(
    resolved_at: datetime, at: datetime, window: timedelta
) -> None:
    decision = decide_trigger(None, resolved(resolved_at), at, window)

    if at <= resolved_at:
        assert decision.step is Step.IGNORE
    elif at - resolved_at < window:
        assert decision.step is Step.REOPEN
    else:
        assert decision.step is Step.CREATE


@PROPERTY_SETTINGS
@given(
    last_transition_at=TIMES,
    at=TIMES,
    status=st.sampled_from([Status.TRIGGERED, Status.ACKNOWLEDGED]),
    assigns=st.booleans(),
)
def test_older_delivery_never_undoes_a_newer_transition(
    last_transition_at: datetime, at: datetime, status: Status, assigns: bool
) -> None:
    state = incident(status, last_transition_at=last_transition_at)

    decisions = [decide_resolve(state, at), decide_acknowledge(state, at, assigns=assigns)]

    for decision in decisions:
        assert decision.matched is True
        if at < last_transition_at:
            assert decision.step is Step.IGNORE
    if at >= last_transition_at:
        assert decisions[0].step is Step.RESOLVE
