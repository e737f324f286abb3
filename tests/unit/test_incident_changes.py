"""The one decision of every incident change (app/domain/incident.py): fields, notes and
the incident events notifications hang off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.domain.errors import IllegalTransition
from app.domain.incident import (
    Assignment,
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
    news = SentryNews(Step.ADD_EVENT, title="TypeError: cart is undefined")
    change = change_incident(incident(), news, LATER, LATER)

    assert change.events == ()
    assert change.fields["event_count"] == 4
    assert [note.kind for note in change.notes] == ["retriggered"]


def test_a_severity_rise_of_an_open_incident_is_an_event() -> None:
    news = SentryNews(Step.ADD_EVENT, severity="critical", title="TypeError: cart is undefined")
    change = change_incident(incident(severity="warning"), news, LATER, LATER)

    assert change.events == (IncidentEvent.SEVERITY_RAISED,)
    assert change.fields["severity"] == "critical"
    # The event first, then what it changed: the timeline reads in the order of happening.
    assert [note.kind for note in change.notes] == ["retriggered", "severity_changed"]


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


# ---------------------------------------------------------------- issue 16: order, facts, times


def test_a_reopen_with_a_new_severity_reads_reopened_then_severity_changed() -> None:
    current = incident(status="resolved", severity="warning")
    news = SentryNews(Step.REOPEN, severity="critical", title="TypeError: cart is undefined")
    change = change_incident(current, news, LATER, LATER)

    assert [note.kind for note in change.notes] == ["reopened", "severity_changed"]


def test_a_new_title_is_a_timeline_entry_after_the_event() -> None:
    news = SentryNews(Step.ADD_EVENT, title="TypeError: basket is undefined")
    change = change_incident(incident(), news, LATER, LATER)

    assert change.fields["title"] == "TypeError: basket is undefined"
    assert [note.kind for note in change.notes] == ["retriggered", "title_changed"]
    note = change.notes[1]
    assert "cart is undefined" in note.message and "basket is undefined" in note.message
    assert note.data == {
        "from": "TypeError: cart is undefined",
        "to": "TypeError: basket is undefined",
    }


def test_an_older_event_with_another_title_records_no_title_change() -> None:
    news = SentryNews(Step.ADD_EVENT, title="old title", is_latest_event=False)
    change = change_incident(incident(), news, T0 - timedelta(minutes=1), LATER)

    assert [note.kind for note in change.notes] == ["retriggered"]


def test_triggered_is_when_the_bridge_opened_it_not_the_events_own_time() -> None:
    event_time = datetime.fromtimestamp(1705312800, tz=UTC)  # 2024-01-15, a legacy event
    news = SentryNews(Step.CREATE, facts={"event_at": event_time})
    change = change_incident(None, news, event_time, LATER)

    assert change.fields["triggered_at"] == LATER
    assert change.fields["created_at"] == LATER
    assert change.fields["event_at"] == event_time
    assert change.fields["first_event_at"] == event_time  # the lifecycle's clock


def test_a_sentry_reopen_triggers_at_the_bridges_time() -> None:
    current = incident(status="resolved")
    change = change_incident(current, SentryNews(Step.REOPEN), T0, LATER)

    assert change.fields["triggered_at"] == LATER
    assert change.fields["last_transition_at"] == T0


def test_facts_of_the_newest_event_replace_and_absent_ones_stay() -> None:
    current = incident(culprit="old", release="1.0", sentry_count=3)
    news = SentryNews(
        Step.ADD_EVENT, title=current["title"], facts={"release": "1.1", "sentry_count": 4}
    )
    change = change_incident(current, news, LATER, LATER)

    assert change.fields["release"] == "1.1" and change.fields["sentry_count"] == 4
    assert "culprit" not in change.fields

    older = SentryNews(Step.ADD_EVENT, facts={"release": "0.9"}, is_latest_event=False)
    assert "release" not in change_incident(current, older, T0, LATER).fields


def test_a_resolve_takes_sentrys_newest_counts_but_not_an_event_time() -> None:
    news = SentryNews(Step.RESOLVE, facts={"sentry_count": 42, "event_at": T0})
    change = change_incident(incident(), news, LATER, LATER)

    assert change.fields["sentry_count"] == 42
    assert "event_at" not in change.fields


def test_a_new_incident_keeps_whether_it_is_a_test_alert() -> None:
    assert change_incident(None, SentryNews(Step.CREATE, is_test=True), T0, T0).fields["is_test"]
    assert not change_incident(None, SentryNews(Step.CREATE), T0, T0).fields["is_test"]


def test_assigning_records_who_assigned_whom() -> None:
    change = change_incident(
        incident(), Assignment("alice@example.com", "bob@example.com"), LATER, LATER
    )

    assert change.fields == {"assignee": "alice@example.com", "updated_at": LATER}
    assert change.events == ()
    (note,) = change.notes
    assert (note.kind, note.actor) == ("assigned", "bob@example.com")
    assert note.message == "Assigned to alice@example.com by bob@example.com"


def test_unassigning_names_who_it_was_and_the_same_assignee_changes_nothing() -> None:
    current = incident(assignee="alice@example.com")
    change = change_incident(current, Assignment(None, "bob@example.com"), LATER, LATER)

    assert change.fields["assignee"] is None
    assert change.notes[0].kind == "unassigned"
    assert change.notes[0].message == "Unassigned (was alice@example.com) by bob@example.com"
    same = change_incident(current, Assignment("alice@example.com", "bob"), LATER, LATER)
    assert same.fields == {} and same.notes == ()


def test_there_is_nothing_to_assign_without_an_incident() -> None:
    with pytest.raises(IllegalTransition):
        change_incident(None, Assignment("alice@example.com", "bob"), LATER, LATER)


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
