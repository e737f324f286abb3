"""Paging through the outbox on SQLite and PostgreSQL, with an injected clock: Sentry
deliveries and people's actions start and stop escalations, the jobs pass fires due
steps into outbox rows, and the sender (a recording fake `send`) delivers them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.domain import ack_link
from app.domain.incident import IncidentEvent
from app.domain.lifecycle import HumanAction
from app.domain.schedule import ShiftUnit
from app.extensions import Bridge
from app.jobs.escalations import run_paging
from app.jobs.notify import NotificationSender
from app.services import (
    ack_links,
    contacts,
    escalation_policies,
    incidents,
    notification_outbox,
    schedules,
)
from app.services.notification_documents import incident_fields
from app.services.notifications import queue_notifications
from app.store import queries
from app.store.models import ContactMethod, Escalation, Incident, TimelineEntry
from app.store.notify_models import Notification
from tests.support.integrations import MadeIntegration
from tests.support.notify import Clock, FakeSend, make_channel, send_sentry
from tests.support.oncall import make_people

Make = Callable[..., MadeIntegration]
PEOPLE = ("a@example.com", "lead@example.com")


@pytest.fixture
def paging(bridge: Bridge, make_integration: Make) -> tuple[MadeIntegration, Clock]:
    """Service Payments with a schedule `primary` (a, always on call), the policy
    `0:schedule:primary`, `5:user:lead`, `10:channel:ops-chat`; a also has an Apprise URL."""
    integration = make_integration(secret="s3cr3t")
    set_up_at = Clock().now
    start = set_up_at - timedelta(days=1)
    # The channel hears only resolves of its own accord: what reaches it otherwise is the
    # policy's third step.
    make_channel(bridge, "Payments", name="ops-chat", events="resolved")
    with bridge.database.transaction() as session:
        make_people(session, start, *PEOPLE)
        apprise = contacts.add_apprise(
            session, bridge.secrets, "a@example.com", "json://127.0.0.1:9/a", start, "push"
        )
        contacts.verify(session, apprise.id, "admin@example.com", start)
        spec = schedules.LayerSpec(["a@example.com"], 1, ShiftUnit.WEEKS, "mon 09:00", start)
        created = schedules.create_schedule(session, bridge.secrets, "primary", "UTC", spec, start)
        # The first shift starts at the first Monday 09:00 after `start`: an override
        # covers the time until then, so that `a` is on call now whatever the weekday.
        until = set_up_at + timedelta(days=8)
        schedules.add_override(session, created.schedule, "a@example.com", start, until, start)
        policy = escalation_policies.create_policy(
            session,
            "default",
            ["0:schedule:primary", "5:user:lead@example.com", "10:channel:ops-chat"],
            start,
            0,
            None,
        )
        service = queries.get_service_by_name(session, "Payments")
        assert service is not None
        escalation_policies.update_service_paging(session, service, policy)
    # Ingest stamps the real time, and the tests' boundaries (4:50 then +10 s) take the
    # jobs to run 1 s after it: the clock starts only now, after the set-up above, which
    # on a loaded host took more than that second and left the jobs "before" the incident.
    clock = Clock()
    clock.advance(seconds=1)
    return integration, clock


def deliver(bridge: Bridge, clock: Clock) -> FakeSend:
    """Work the outbox at the clock's time through a recording `send`."""
    send = FakeSend()
    NotificationSender(bridge, send, clock=clock, worker="sender").drain()
    return send


def jobs(bridge: Bridge, clock: Clock, worker: str = "jobs-1") -> int:
    return run_paging(bridge, clock=clock, worker=worker)


def whom(send: FakeSend) -> list[str]:
    """Each message's addressee: the email recipient, `apprise`, or the channel's name."""
    out = []
    for target, _message in send.calls:
        if target.kind == "email":
            out.extend(target.recipients)
        elif target.kind == "apprise":
            out.append(f"apprise:{target.name}")
        else:
            out.append(f"channel:{target.name}")
    return sorted(out)


def incident_id(bridge: Bridge) -> int:
    with bridge.database.reading() as session:
        found = session.scalar(select(Incident.id))
        assert found is not None
        return found


def timeline(bridge: Bridge, kind: str | None = None) -> list[str]:
    with bridge.database.reading() as session:
        query = select(TimelineEntry).order_by(TimelineEntry.id)
        if kind:
            query = query.where(TimelineEntry.kind == kind)
        return [entry.message for entry in session.scalars(query)]


def act(bridge: Bridge, action: HumanAction, clock: Clock, actor: str = "ops@example.com") -> None:
    with bridge.database.transaction() as session:
        incidents.act_on_incident(session, incident_id(bridge), action, actor, clock.now)


def test_a_sentry_trigger_pages_each_step_in_order_through_the_outbox(
    client: FlaskClient, bridge: Bridge, paging: tuple[MadeIntegration, Clock]
) -> None:
    integration, clock = paging
    send_sentry(client, integration, level="error")

    assert jobs(bridge, clock) == 1
    first = deliver(bridge, clock)
    # The person on call, through both usable methods (account email and Apprise URL).
    assert whom(first) == ["a@example.com", "apprise:a@example.com"]
    assert {m.type for _t, m in first.calls} == {"incident.triggered"}
    assert all(m.ack_url for _t, m in first.calls)  # pages carry the acknowledge link

    clock.advance(minutes=4, seconds=50)
    assert jobs(bridge, clock) == 0
    clock.advance(seconds=10)
    assert jobs(bridge, clock) == 1
    assert whom(deliver(bridge, clock)) == ["lead@example.com"]
    clock.advance(minutes=10)
    jobs(bridge, clock)
    assert whom(deliver(bridge, clock)) == ["channel:ops-chat"]

    steps = timeline(bridge, "escalation")
    assert (
        "paged a@example.com (on call for primary; email a@example.com, apprise push://…)"
        in (steps[1])
    )
    assert "paged lead@example.com (email lead@example.com)" in steps[2]
    assert "paged channel ops-chat" in steps[3]
    sent = timeline(bridge, "notified")
    assert "Sent incident.triggered to a@example.com (email) (escalation step 1)" in sent
    assert "Sent incident.triggered to lead@example.com (email) (escalation step 2)" in sent


def test_a_failed_page_is_on_the_timeline_and_retried_like_any_notification(
    client: FlaskClient, bridge: Bridge, paging: tuple[MadeIntegration, Clock]
) -> None:
    integration, clock = paging
    send_sentry(client, integration, level="error")
    jobs(bridge, clock)
    from app.channels.base import SendResult

    send = FakeSend(script=[SendResult("retry", error="busy"), SendResult("failed", error="no")])
    NotificationSender(bridge, send, clock=clock, worker="sender", jitter=lambda: 0.0).drain()

    with bridge.database.reading() as session:
        statuses = sorted(n.status for n in session.scalars(select(Notification)))
    assert statuses == ["failed", "queued"]  # one for a retry (backoff), one failed for good
    assert any(m.startswith("Could not send incident.triggered to a@") for m in timeline(bridge))


def test_acknowledging_through_the_pages_link_stops_the_rest_and_names_the_person(
    client: FlaskClient, bridge: Bridge, paging: tuple[MadeIntegration, Clock]
) -> None:
    integration, clock = paging
    send_sentry(client, integration, level="error")
    jobs(bridge, clock)
    first = deliver(bridge, clock)
    email_page = next(m for t, m in first.calls if t.kind == "email")
    assert email_page.ack_url is not None
    token = urlsplit(email_page.ack_url).path.rsplit("/", 1)[-1]

    clock.advance(minutes=1)
    with bridge.database.transaction() as session:
        key = ack_link.link_key(bridge.session_secret)
        acknowledged = ack_links.acknowledge_by_link(session, key, token, clock.now)
        assert acknowledged.status == "acknowledged"

    clock.advance(minutes=30)
    assert jobs(bridge, clock) == 0
    assert deliver(bridge, clock).calls == []  # no lead, no channel
    messages = timeline(bridge)
    assert "Acknowledged by a@example.com via the page sent by email" in messages
    assert "Escalation stopped: the incident was acknowledged." in messages


def test_resolving_stops_and_a_reopen_starts_the_policy_over(
    client: FlaskClient, bridge: Bridge, paging: tuple[MadeIntegration, Clock]
) -> None:
    integration, clock = paging
    send_sentry(client, integration, level="error")
    jobs(bridge, clock)
    deliver(bridge, clock)
    clock.advance(minutes=1)
    act(bridge, HumanAction.RESOLVE, clock)
    assert whom(deliver(bridge, clock)) == ["channel:ops-chat"]  # the resolve, not a page
    clock.advance(minutes=10)
    assert jobs(bridge, clock) == 0

    act(bridge, HumanAction.REOPEN, clock)
    assert jobs(bridge, clock) == 1
    again = deliver(bridge, clock)

    assert whom(again) == ["a@example.com", "apprise:a@example.com"]
    assert {m.type for _t, m in again.calls} == {"incident.reopened"}
    with bridge.database.reading() as session:
        runs = sorted({row.run for row in session.scalars(select(Escalation))})
    assert runs == [1, 2]


def test_the_ack_timeout_re_triggers_with_a_timeline_entry_and_pages_again(
    client: FlaskClient, bridge: Bridge, paging: tuple[MadeIntegration, Clock]
) -> None:
    integration, clock = paging
    with bridge.database.transaction() as session:
        service = queries.get_service_by_name(session, "Payments")
        assert service is not None
        escalation_policies.update_service_paging(session, service, ack_timeout_minutes=30)
    send_sentry(client, integration, level="error")
    jobs(bridge, clock)
    deliver(bridge, clock)
    clock.advance(minutes=1)
    act(bridge, HumanAction.ACKNOWLEDGE, clock)

    clock.advance(minutes=29, seconds=59)
    jobs(bridge, clock)
    assert deliver(bridge, clock).calls == []
    clock.advance(seconds=1)
    assert jobs(bridge, clock) == 1
    again = deliver(bridge, clock)

    assert whom(again) == ["a@example.com", "apprise:a@example.com"]
    assert {m.type for _t, m in again.calls} == {"incident.reopened"}
    with bridge.database.reading() as session:
        incident = session.get(Incident, incident_id(bridge))
        assert incident is not None and incident.status == "triggered"
        rows = session.scalars(select(Escalation).order_by(Escalation.id))
        reasons = [row.reason for row in rows]
    assert reasons[-1] == "ack_timeout"
    assert any("acknowledgement timeout" in m for m in timeline(bridge, "ack_timeout"))
    # Later, nothing re-triggers twice.
    clock.advance(minutes=1)
    jobs(bridge, clock)
    assert whom(deliver(bridge, clock)) == []


def test_a_schedule_gap_is_recorded_and_the_next_step_pages_at_once(
    client: FlaskClient, bridge: Bridge, paging: tuple[MadeIntegration, Clock]
) -> None:
    integration, clock = paging
    with bridge.database.transaction() as session:
        later = clock.now + timedelta(days=30)
        spec = schedules.LayerSpec(["a@example.com"], 1, ShiftUnit.WEEKS, "mon 09:00", later)
        schedules.create_schedule(session, bridge.secrets, "future", "UTC", spec, clock.now)
        policy = escalation_policies.create_policy(
            session, "gappy", ["0:schedule:future", "15:user:lead@example.com"], clock.now, 0, None
        )
        service = queries.get_service_by_name(session, "Payments")
        assert service is not None
        escalation_policies.update_service_paging(session, service, policy)
    send_sentry(client, integration, level="error")

    assert jobs(bridge, clock) == 2  # the gap, then at once the next step

    assert whom(deliver(bridge, clock)) == ["lead@example.com"]
    assert any("nobody is on call for schedule future" in m for m in timeline(bridge))


def test_below_the_paging_threshold_only_channels_hear_until_the_severity_rises(
    client: FlaskClient, bridge: Bridge, paging: tuple[MadeIntegration, Clock]
) -> None:
    integration, clock = paging
    send_sentry(client, integration, level="warning")
    assert jobs(bridge, clock) == 0

    with bridge.database.transaction() as session:
        incident = session.get(Incident, incident_id(bridge))
        assert incident is not None
        incident.severity = "error"
        session.flush()
        raised = (IncidentEvent.SEVERITY_RAISED,)
        queue_notifications(session.connection(), incident_fields(incident), raised, clock.now)
    assert jobs(bridge, clock) == 1
    # A second rise while it runs starts nothing new.
    with bridge.database.transaction() as session:
        incident = session.get(Incident, incident_id(bridge))
        assert incident is not None
        incident.severity = "critical"
        session.flush()
        raised = (IncidentEvent.SEVERITY_RAISED,)
        queue_notifications(session.connection(), incident_fields(incident), raised, clock.now)
    with bridge.database.reading() as session:
        assert {row.run for row in session.scalars(select(Escalation))} == {1}


def test_two_jobs_processes_never_fire_one_step_twice(
    client: FlaskClient, bridge: Bridge, paging: tuple[MadeIntegration, Clock]
) -> None:
    integration, clock = paging
    for number in range(6):
        send_sentry(client, integration, issue_id=str(9000 + number), level="error")
    fired: list[int] = []
    barrier = threading.Barrier(2)

    def worker(name: str) -> None:
        barrier.wait()
        fired.append(jobs(bridge, clock, worker=name))

    threads = [threading.Thread(target=worker, args=(f"jobs-{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sum(fired) == 6
    with bridge.database.reading() as session:
        pages = list(session.scalars(select(Notification)))
    # Six incidents, each paging a through two methods: twelve rows, none twice.
    assert len(pages) == 12
    assert len({(n.incident_id, n.contact_method_id) for n in pages}) == 12


def test_jobs_down_for_ten_minutes_page_each_overdue_step_once(
    client: FlaskClient, bridge: Bridge, paging: tuple[MadeIntegration, Clock]
) -> None:
    integration, clock = paging
    send_sentry(client, integration, level="error")
    clock.advance(minutes=10)

    assert jobs(bridge, clock) == 2  # step 1 and step 2 (5 min); step 3 at 15 min
    assert whom(deliver(bridge, clock)) == [
        "a@example.com",
        "apprise:a@example.com",
        "lead@example.com",
    ]
    assert jobs(bridge, clock) == 0


def test_send_me_a_test_makes_a_method_pageable_only_once_it_is_sent(
    bridge: Bridge, paging: tuple[MadeIntegration, Clock]
) -> None:
    _integration, clock = paging
    with bridge.database.transaction() as session:
        method = contacts.add_apprise(
            session, bridge.secrets, "lead@example.com", "json://127.0.0.1:9/x", clock.now
        )
        method_id = method.id
        notification_outbox.queue_method_test(session, method, clock.now)
    from app.channels.base import SendResult

    failing = FakeSend(script=[SendResult("failed", error="unknown host")])
    NotificationSender(bridge, failing, clock=clock, worker="sender").drain()
    with bridge.database.reading() as session:
        method = session.get(ContactMethod, method_id)
        assert method is not None and method.tested_at is None
        assert not contacts.is_pageable(method)

    with bridge.database.transaction() as session:
        method = contacts.get_method(session, method_id)
        notification_outbox.queue_method_test(session, method, clock.now)
    sent = deliver(bridge, clock)

    assert [(t.kind, t.url) for t, _m in sent.calls] == [("apprise", "json://127.0.0.1:9/x")]
    assert sent.calls[0][1].type == "test"
    with bridge.database.reading() as session:
        method = session.get(ContactMethod, method_id)
        assert method is not None and method.tested_at == clock.now
        assert contacts.is_pageable(method)
