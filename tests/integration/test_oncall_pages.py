"""The schedules page: on call now and next, two weeks with gaps flagged, admin forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from app.extensions import Bridge
from app.services import catalog
from app.services.accounts import Role, create_user
from app.store.models import EscalationPolicy, Schedule, ScheduleOverride, Service
from tests.support.oncall import make_people
from tests.support.pages import PASSWORD, csrf_token, log_in


@pytest.fixture
def people(bridge: Bridge) -> None:
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        create_user(session, "admin@x.example", PASSWORD, Role.ADMIN, now)
        make_people(session, now, "a@x.example", "b@x.example")


def post(client: FlaskClient, path: str, **form: str) -> str:
    form["csrf_token"] = csrf_token(client, "/schedules")
    response = client.post(path, data=form, follow_redirects=True)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_admin_creates_a_schedule_and_reads_who_is_on_call_now(
    client: FlaskClient, people: None
) -> None:
    assert log_in(client, "admin@x.example") == 302
    start = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")

    page = post(
        client,
        "/admin/schedules",
        name="primary",
        timezone="UTC",
        rotation="daily",
        handoff=start[-5:],
        members="a@x.example,b@x.example",
        start=start,
    )

    assert "Schedule primary created." in page
    assert "On call now: a@x.example" in page
    assert "Next: b@x.example" in page
    assert "/calendars/schedules/" in page and "/calendars/people/" in page


def test_gaps_in_the_next_two_weeks_are_flagged(client: FlaskClient, people: None) -> None:
    assert log_in(client, "admin@x.example") == 302
    later = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")

    page = post(
        client,
        "/admin/schedules",
        name="later",
        timezone="Europe/Berlin",
        members="a@x.example",
        start=later,
    )

    assert 'On call now: <strong class="badge gap">Nobody on call</strong>' in page
    assert "has gaps in the next two weeks" in page
    assert '<tr class="gap">' in page


def test_admin_adds_an_override_and_a_policy(
    client: FlaskClient, bridge: Bridge, people: None
) -> None:
    assert log_in(client, "admin@x.example") == 302
    post(client, "/admin/schedules", name="primary", timezone="UTC", members="a@x.example")
    now = datetime.now(UTC)

    with bridge.database.reading() as session:
        schedule_id = session.query(Schedule).one().id
    page = post(
        client,
        f"/admin/schedules/{schedule_id}/overrides",
        user="b@x.example",
        **{
            "from": (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
            "until": (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert "Override added to primary." in page
    assert "On call now: b@x.example" in page

    page = post(
        client,
        "/admin/policies",
        name="default",
        steps="0:schedule:primary\n15:user:a@x.example\n30:channel:ops-slack",
        repeat="1",
    )
    assert "Escalation policy default created." in page
    assert "0:schedule:primary → 15:user:a@x.example → 30:channel:ops-slack" in page
    with bridge.database.reading() as session:
        assert session.query(EscalationPolicy).count() == 1
        assert session.query(ScheduleOverride).count() == 1


def test_a_bad_form_comes_back_with_the_reason(client: FlaskClient, people: None) -> None:
    assert log_in(client, "admin@x.example") == 302

    page = post(client, "/admin/schedules", name="x", timezone="Mars/Base", members="a@x.example")

    assert "Unknown time zone" in page


def test_responders_read_the_page_but_cannot_change_schedules(
    client: FlaskClient, bridge: Bridge, people: None
) -> None:
    assert log_in(client, "a@x.example") == 302

    assert client.get("/schedules").status_code == 200
    refused = post(client, "/admin/schedules", name="x", timezone="UTC", members="a@x.example")
    post(client, "/admin/policies", name="x", steps="0:user:a@x.example")

    assert "admin role" in refused
    with bridge.database.reading() as session:
        assert session.query(EscalationPolicy).count() == 0
        assert session.query(Schedule).count() == 0


def test_admin_attaches_a_policy_an_ack_timeout_and_a_threshold_to_a_service(
    client: FlaskClient, bridge: Bridge, people: None
) -> None:
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        service = catalog.create_service(session, "Checkout", now)
        service_id = service.id
    assert log_in(client, "admin@x.example") == 302
    post(client, "/admin/schedules", name="primary", timezone="UTC", members="a@x.example")
    post(client, "/admin/policies", name="default", steps="0:schedule:primary", repeat="0")
    with bridge.database.reading() as session:
        policy_id = session.query(EscalationPolicy).one().id

    page = post(
        client,
        f"/admin/services/{service_id}/paging",
        policy_id=str(policy_id),
        ack_timeout_minutes="30",
        page_min_severity="critical",
    )

    assert "Paging of Checkout saved." in page
    with bridge.database.reading() as session:
        saved = session.get(Service, service_id)
        assert saved is not None
        assert (saved.escalation_policy_id, saved.ack_timeout_minutes) == (policy_id, 30)
        assert saved.page_min_severity == "critical"
    assert f'<option value="{policy_id}" selected>default</option>' in page

    page = post(client, f"/admin/services/{service_id}/paging", policy_id="", page_min_severity="x")
    assert "The paging threshold is a severity" in page
    page = post(
        client, f"/admin/services/{service_id}/paging", policy_id="", page_min_severity="error"
    )
    with bridge.database.reading() as session:
        cleared = session.get(Service, service_id)
        assert cleared is not None
        assert (cleared.escalation_policy_id, cleared.ack_timeout_minutes) == (None, None)
