"""The one decision of every incident change (app/domain/incident.py): fields, notes and
the incident events notifications hang off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.domain.errors import IllegalTransition
from app.domain.incident import (
    IncidentEvent,
    PersonAction,
    SentryNews,
    change_incident,
    is_more_severe,
)
from app.domain.lifecycle import HumanAction, Step

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)


def incident(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": 7,
        "service_id": 1,
        "dedup_key": "sentry-1",
        "title": "TypeError: cart is undefined",
        "severity": "error",
        "status": "triggered",
        "event_count": 3,
        "last_event_at": T0,
        "reopen_count": 0,
        "assignee": None,
    }
    fields.update(changes)
    return fields


def test_a_new_incident_is_opened_triggered_with_the_triggered_event() -> None:
    news = SentryNews(Step.CREATE, severity="critical", title="Boom", dedup_key="sentry-9")
    change = change_incident(None, news, T0, LATER)

    assert change.events == (IncidentEvent.TRIGGERED,)
    assert change.fields["status"] == "triggered"
    assert change.fields["severity"] == "critical"
    assert change.fields["event_count"] == 1
    assert change.fields["first_event_at"] == T0
    assert change.fields["created_at"] == LATER
    assert [note.kind for note in change.notes] == ["triggered"]


def test_another_event_of_an_open_incident_causes_no_event() -> None:
    change = change_incident(incident(), SentryNews(Step.ADD_EVENT), LATER, LATER)

    assert change.events == ()
    assert change.fields["event_count"] == 4
    assert [note.kind for note in change.notes] == ["retriggered"]


def test_a_severity_rise_of_an_open_incident_is_an_event() -> None:
    news = SentryNews(Step.ADD_EVENT, severity="critical")
    change = change_incident(incident(severity="warning"), news, LATER, LATER)

    assert change.events == (IncidentEvent.SEVERITY_RAISED,)
    assert change.fields["severity"] == "critical"
    assert [note.kind for note in change.notes] == ["severity_changed", "retriggered"]


def test_a_severity_fall_changes_the_field_but_causes_no_event() -> None:
    news = SentryNews(Step.ADD_EVENT, severity="warning")
    change = change_incident(incident(severity="critical"), news, LATER, LATER)

    assert change.events == ()
    assert change.fields["severity"] == "warning"


def test_an_older_event_sets_neither_title_nor_severity() -> None:
    news = SentryNews(Step.ADD_EVENT, severity="critical", title="new", is_latest_event=False)
    change = change_incident(incident(), news, T0 - timedelta(minutes=1), LATER)

    assert "severity" not in change.fields and "title" not in change.fields
    assert change.events == ()
    assert change.fields["last_event_at"] == T0


def test_a_reopen_is_one_reopened_event_even_with_a_new_severity() -> None:
    current = incident(status="resolved", severity="warning", reopen_count=1)
    change = change_incident(current, SentryNews(Step.REOPEN, severity="critical"), LATER, LATER)

    assert change.events == (IncidentEvent.REOPENED,)
    assert change.fields["status"] == "triggered"
    assert change.fields["reopen_count"] == 2
    assert change.fields["resolved_at"] is None


def test_sentry_resolve_and_acknowledge_are_events() -> None:
    resolved = change_incident(incident(), SentryNews(Step.RESOLVE), LATER, LATER)
    acknowledged = change_incident(incident(), SentryNews(Step.ACKNOWLEDGE), LATER, LATER)

    assert resolved.events == (IncidentEvent.RESOLVED,)
    assert resolved.fields["resolved_at"] == LATER
    assert acknowledged.events == (IncidentEvent.ACKNOWLEDGED,)


def test_an_assignment_of_an_acknowledged_incident_is_no_event() -> None:
    news = SentryNews(Step.ACKNOWLEDGE, assignee="ana@example.com")
    change = change_incident(incident(status="acknowledged"), news, LATER, LATER)

    assert change.events == ()
    assert change.fields["assignee"] == "ana@example.com"
    assert [note.kind for note in change.notes] == ["assigned"]


def test_comments_and_ignored_deliveries_cause_no_event() -> None:
    comment = change_incident(incident(), SentryNews(Step.COMMENT, comment="hi"), LATER, LATER)
    ignored = change_incident(incident(), SentryNews(Step.IGNORE), LATER, LATER)

    assert comment.events == () and comment.notes[0].message == "hi"
    assert ignored.fields == {} and ignored.notes == () and ignored.events == ()


@pytest.mark.parametrize(
    ("action", "status", "event"),
    [
        (HumanAction.ACKNOWLEDGE, "triggered", IncidentEvent.ACKNOWLEDGED),
        (HumanAction.RESOLVE, "acknowledged", IncidentEvent.RESOLVED),
        (HumanAction.REOPEN, "resolved", IncidentEvent.REOPENED),
    ],
)
def test_a_persons_action_is_an_event_with_their_name(
    action: HumanAction, status: str, event: IncidentEvent
) -> None:
    change = change_incident(
        incident(status=status), PersonAction(action, "ana@example.com"), LATER, LATER
    )

    assert change.events == (event,)
    assert change.fields["last_transition_at"] == LATER
    [note] = change.notes
    assert note.actor == "ana@example.com"
    assert note.message.endswith("by ana@example.com")
    assert note.data == {"by": "person"}


def test_an_acknowledge_link_is_named_in_the_timeline() -> None:
    cause = PersonAction(HumanAction.ACKNOWLEDGE, "link", via="notification link to ops")
    change = change_incident(incident(), cause, LATER, LATER)

    [note] = change.notes
    assert note.message == "Acknowledged by link via notification link to ops"
    assert note.data == {"by": "link", "via": "notification link to ops"}


def test_illegal_person_actions_are_refused() -> None:
    with pytest.raises(IllegalTransition):
        change_incident(
            incident(status="resolved"), PersonAction(HumanAction.ACKNOWLEDGE, "x"), T0, T0
        )


def test_severity_order_is_info_warning_error_critical() -> None:
    assert is_more_severe("critical", "error")
    assert is_more_severe("warning", "info")
    assert not is_more_severe("error", "critical")
    assert not is_more_severe("error", "error")


def test_an_event_naming_its_project_renames_an_incident_named_by_the_slug() -> None:
    news = SentryNews(Step.ADD_EVENT, source="Sentry - Web Shop", names_project=True)
    change = change_incident(incident(source="Sentry - web-shop"), news, LATER, LATER)

    assert change.fields["source"] == "Sentry - Web Shop"


def test_a_reopen_naming_its_project_renames_the_incident_too() -> None:
    resolved = incident(status="resolved", source="Sentry - web-shop")
    news = SentryNews(Step.REOPEN, source="Sentry - Web Shop", names_project=True)
    change = change_incident(resolved, news, LATER, LATER)

    assert change.fields["source"] == "Sentry - Web Shop"


@pytest.mark.parametrize(
    ("source", "names_project"),
    [("Sentry - Web Shop", True), ("Sentry - web-shop", False)],
    ids=["same-name", "slug-only"],
)
def test_the_source_is_kept_when_the_name_is_the_same_or_not_given(
    source: str, names_project: bool
) -> None:
    news = SentryNews(Step.ADD_EVENT, source=source, names_project=names_project)
    change = change_incident(incident(source="Sentry - Web Shop"), news, LATER, LATER)

    assert "source" not in change.fields


def test_a_comment_never_renames_the_incident() -> None:
    news = SentryNews(Step.COMMENT, source="Sentry - Web Shop", names_project=True)
    change = change_incident(incident(source="Sentry - web-shop"), news, LATER, LATER)

    assert "source" not in change.fields
