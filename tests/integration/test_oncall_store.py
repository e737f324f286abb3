"""Schedules, policies and escalation rows on SQLite and PostgreSQL, with an injected clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.errors import Conflict, InvalidInput, NotFound
from app.domain.schedule import ShiftUnit
from app.extensions import Bridge
from app.jobs.escalations import run_due_escalations
from app.services import contacts, escalation_policies, escalations, schedules
from app.store.models import ContactMethod, Escalation, Incident, TimelineEntry
from tests.support.notify import make_channel
from tests.support.oncall import RecordingPager, make_incident, make_people, make_service

MONDAY = datetime(2025, 3, 17, 9, tzinfo=UTC)  # 10:00 in Berlin


def weekly(members: list[str], start: datetime = MONDAY) -> schedules.LayerSpec:
    return schedules.LayerSpec(members, 1, ShiftUnit.WEEKS, "mon 10:00", start)


def at(minutes: float) -> datetime:
    return MONDAY + timedelta(minutes=minutes)


@pytest.fixture
def people(bridge: Bridge) -> None:
    with bridge.database.transaction() as session:
        make_people(session, MONDAY, "a@example.com", "b@example.com", "lead@example.com")


def setup_policy(bridge: Bridge, *steps: str, repeat: int = 0) -> int:
    """A schedule `primary` (a, b weekly), a policy, a service using it; returns incident id."""
    with bridge.database.transaction() as session:
        schedules.create_schedule(
            session,
            bridge.secrets,
            "primary",
            "Europe/Berlin",
            weekly(["a@example.com", "b@example.com"]),
            MONDAY,
        )
        policy = escalation_policies.create_policy(session, "default", steps, MONDAY, repeat, None)
        service = make_service(session, MONDAY)
        escalation_policies.update_service_paging(session, service, policy)
        incident = make_incident(session, service, MONDAY)
        return incident.id


def run_jobs(bridge: Bridge, now: datetime, pager: RecordingPager, worker: str = "w1") -> int:
    """One pass of a jobs process at `now`: claim due rows and fire them until none are due."""
    return run_due_escalations(bridge, pager, clock=lambda: now, worker=worker)


def start(bridge: Bridge, incident_id: int, now: datetime, reason: str = "triggered") -> None:
    with bridge.database.transaction() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        escalations.start_escalation(session, incident, reason, now)


def set_status(bridge: Bridge, incident_id: int, status: str, now: datetime) -> None:
    with bridge.database.transaction() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        incident.status = status
        if status != "triggered":
            escalations.stop_escalation(session, incident_id, now)


# ---------------------------------------------------------------- schedules


def test_schedule_answers_who_is_on_call_with_overrides(bridge: Bridge, people: None) -> None:
    with bridge.database.transaction() as session:
        created = schedules.create_schedule(
            session,
            bridge.secrets,
            "primary",
            "Europe/Berlin",
            weekly(["a@example.com", "b@example.com"]),
            MONDAY,
        )
        schedules.add_override(
            session, created.schedule, "lead@example.com", at(60), at(120), MONDAY
        )
        schedule_id = created.schedule.id
    with bridge.database.transaction() as session:
        schedule = schedules.get_schedule(session, schedule_id)
        now = schedules.who_is_on_call(schedule, at(30))
        covered = schedules.who_is_on_call(schedule, at(90))
        next_week = schedules.who_is_on_call(schedule, MONDAY + timedelta(days=8))
        found = schedules.schedule_by_feed_token(session, created.feed_token)

    assert (now.person, now.start, now.end) == ("a@example.com", MONDAY, at(60))
    assert (covered.person, covered.source) == ("lead@example.com", "override")
    assert next_week.person == "b@example.com"
    assert found is not None and found.id == schedule_id
    assert created.feed_token not in created.schedule.feed_token_ciphertext


def test_schedule_input_is_checked(bridge: Bridge, people: None) -> None:
    with bridge.database.transaction() as session:
        box = bridge.secrets
        with pytest.raises(InvalidInput, match="time zone"):
            schedules.create_schedule(session, box, "x", "Mars/Base", weekly([]), MONDAY)
        with pytest.raises(NotFound):
            schedules.create_schedule(
                session, box, "x", "UTC", weekly(["nobody@example.com"]), MONDAY
            )
        with pytest.raises(InvalidInput, match="member"):
            schedules.create_schedule(session, box, "x", "UTC", weekly([]), MONDAY)
        schedules.create_schedule(session, box, "x", "UTC", weekly(["a@example.com"]), MONDAY)
        with pytest.raises(Conflict):
            schedules.create_schedule(session, box, "x", "UTC", weekly(["a@example.com"]), MONDAY)


def test_user_feed_token_is_made_once_and_finds_the_user(bridge: Bridge, people: None) -> None:
    with bridge.database.transaction() as session:
        user = schedules.find_user(session, "a@example.com")
        first = schedules.user_feed_token(session, bridge.secrets, user)
        again = schedules.user_feed_token(session, bridge.secrets, user)
        found = schedules.user_by_feed_token(session, first)

    assert first == again
    assert found is not None and found.email == "a@example.com"


# ---------------------------------------------------------------- contact methods


def test_apprise_urls_are_encrypted_and_pageable_only_once_verified(
    bridge: Bridge, people: None
) -> None:
    url = "ntfy://ntfy.example.com/s3cret-topic"
    with bridge.database.transaction() as session:
        method = contacts.add_apprise(session, bridge.secrets, "a@example.com", url, MONDAY)
        user = schedules.find_user(session, "a@example.com")
        assert method.target_ciphertext is not None and "s3cret" not in method.target_ciphertext
        before = [m.id for m in contacts.pageable_methods(session, user.id)]
        contacts.verify(session, method.id, "admin@example.com", MONDAY)
        after = [m.id for m in contacts.pageable_methods(session, user.id)]
        listed = contacts.list_methods(session, user, MONDAY)

    assert method.id not in before and method.id in after
    assert [m.kind for m in listed] == ["email", "apprise"]
    assert contacts.target_of(bridge.secrets, method) == url
    assert "s3cret" not in contacts.masked_target(method)


def test_account_email_method_is_made_once(bridge: Bridge) -> None:
    with bridge.database.transaction() as session:
        make_people(session, MONDAY, "new@example.com")
    with bridge.database.transaction() as session:
        user = schedules.find_user(session, "new@example.com")
        contacts.list_methods(session, user, MONDAY)
        contacts.list_methods(session, user, MONDAY)
        count = session.query(ContactMethod).filter_by(user_id=user.id).count()

    assert count == 1


# ---------------------------------------------------------------- escalation


def test_trigger_walks_the_steps_in_order_at_their_delays(bridge: Bridge, people: None) -> None:
    incident_id = setup_policy(
        bridge, "0:schedule:primary", "15:user:lead@example.com", "30:channel:ops-slack"
    )
    # A policy names a channel; the incident's service has its own of that name.
    make_channel(bridge, "Payments", name="ops-slack")
    pager = RecordingPager()
    start(bridge, incident_id, MONDAY)

    run_jobs(bridge, at(0), pager)
    assert pager.names == ["a@example.com"]
    run_jobs(bridge, at(14.9), pager)
    assert pager.names == ["a@example.com"]
    run_jobs(bridge, at(15), pager)
    run_jobs(bridge, at(45), pager)
    run_jobs(bridge, at(500), pager)

    assert pager.names == ["a@example.com", "lead@example.com", "channel:ops-slack"]
    with bridge.database.reading() as session:
        entries = (
            session.query(TimelineEntry)
            .filter_by(kind="escalation")
            .order_by(TimelineEntry.id)
            .all()
        )
    assert len(entries) == 4  # started + three steps
    assert "paged lead@example.com" in entries[2].message


def test_acknowledging_stops_the_rest_and_reopen_starts_again(bridge: Bridge, people: None) -> None:
    incident_id = setup_policy(bridge, "0:user:a@example.com", "10:user:lead@example.com")
    pager = RecordingPager()
    start(bridge, incident_id, MONDAY)
    run_jobs(bridge, at(0), pager)

    set_status(bridge, incident_id, "acknowledged", at(5))
    run_jobs(bridge, at(60), pager)
    assert pager.names == ["a@example.com"]

    set_status(bridge, incident_id, "triggered", at(70))
    start(bridge, incident_id, at(70), reason="reopened")
    run_jobs(bridge, at(70), pager)
    run_jobs(bridge, at(80), pager)

    assert pager.names == ["a@example.com", "a@example.com", "lead@example.com"]
    with bridge.database.reading() as session:
        runs = {row.run for row in session.query(Escalation).all()}
    assert runs == {1, 2}


def test_a_schedule_gap_is_recorded_and_the_next_step_fires_at_once(
    bridge: Bridge, people: None
) -> None:
    incident_id = setup_policy(bridge, "0:schedule:primary", "15:user:lead@example.com")
    pager = RecordingPager()
    # The schedule's first shift begins at MONDAY: a minute before, nobody is on call.
    with bridge.database.transaction() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        escalations.start_escalation(session, incident, "triggered", at(-1))

    run_jobs(bridge, at(-1), pager)

    assert pager.names == ["lead@example.com"]
    with bridge.database.reading() as session:
        messages = [e.message for e in session.query(TimelineEntry).filter_by(kind="escalation")]
    assert any("nobody is on call for schedule primary" in m for m in messages)


def test_a_person_without_a_usable_contact_method_is_not_paged(bridge: Bridge) -> None:
    with bridge.database.transaction() as session:
        make_people(session, MONDAY, "a@example.com", "b@example.com")
        make_people(session, MONDAY, "lead@example.com", verified=False)
    incident_id = setup_policy(bridge, "0:user:lead@example.com", "5:user:a@example.com")
    pager = RecordingPager()
    start(bridge, incident_id, MONDAY)

    run_jobs(bridge, at(0), pager)

    assert pager.names == ["a@example.com"]


def test_jobs_down_for_ten_minutes_fires_each_overdue_step_once(
    bridge: Bridge, people: None
) -> None:
    incident_id = setup_policy(
        bridge, "0:user:a@example.com", "3:user:b@example.com", "20:user:lead@example.com"
    )
    pager = RecordingPager()
    start(bridge, incident_id, MONDAY)

    fired = run_jobs(bridge, at(10), pager)

    assert fired == 2 and pager.names == ["a@example.com", "b@example.com"]
    run_jobs(bridge, at(11), pager)
    assert len(pager.calls) == 2
    run_jobs(bridge, at(23), pager)
    assert pager.names[-1] == "lead@example.com"


def test_below_the_paging_threshold_nobody_is_paged(bridge: Bridge, people: None) -> None:
    setup_policy(bridge, "0:user:a@example.com")
    with bridge.database.transaction() as session:
        incident = session.query(Incident).one()
        escalation_policies.update_service_paging(
            session, incident.service, page_min_severity="critical"
        )
        started = escalations.start_escalation(session, incident, "triggered", MONDAY)
        rows = session.query(Escalation).count()

    assert started is None and rows == 0


def test_two_claimers_never_claim_one_row_twice(bridge: Bridge, people: None) -> None:
    with bridge.database.transaction() as session:
        policy = escalation_policies.create_policy(session, "p", ["0:user:a@example.com"], MONDAY)
        service = make_service(session, MONDAY)
        escalation_policies.update_service_paging(session, service, policy)
        for number in range(60):
            incident = make_incident(session, service, MONDAY, key=f"k{number}")
            escalations.start_escalation(session, incident, "triggered", MONDAY)
    claimed: dict[str, list[int]] = {"w1": [], "w2": [], "w3": []}
    barrier = threading.Barrier(len(claimed))

    def claim(worker: str) -> None:
        barrier.wait()
        while True:
            with bridge.database.transaction() as session:
                got = escalations.claim_due_escalations(session, at(1), worker, limit=7)
            if not got:
                return
            claimed[worker].extend(got)

    threads = [threading.Thread(target=claim, args=(worker,)) for worker in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    every = [row for rows in claimed.values() for row in rows]
    assert len(every) == len(set(every)) == 60


def test_a_row_whose_lease_ran_out_is_fired_by_the_new_claimer_only(
    bridge: Bridge, people: None
) -> None:
    incident_id = setup_policy(bridge, "0:user:a@example.com")
    start(bridge, incident_id, MONDAY)
    pager = RecordingPager()
    with bridge.database.transaction() as session:
        [row_id] = escalations.claim_due_escalations(session, at(0), "slow")
    with bridge.database.transaction() as session:
        assert escalations.claim_due_escalations(session, at(0.5), "fast") == []
        assert escalations.claim_due_escalations(session, at(2), "fast") == [row_id]
    with bridge.database.transaction() as session:
        late = escalations.fire_escalation(session, row_id, "slow", at(2), pager)
        fired = escalations.fire_escalation(session, row_id, "fast", at(2), pager)
        again = escalations.fire_escalation(session, row_id, "fast", at(2), pager)

    assert late is None and again is None
    assert fired is not None and fired.outcome == "paged"
    assert pager.names == ["a@example.com"]


def test_policy_steps_are_checked_and_round_trip(bridge: Bridge, people: None) -> None:
    with bridge.database.transaction() as session:
        schedules.create_schedule(
            session, bridge.secrets, "primary", "UTC", weekly(["a@example.com"]), MONDAY
        )
        with pytest.raises(InvalidInput):
            escalation_policies.create_policy(session, "p", ["x:user:a"], MONDAY)
        with pytest.raises(NotFound):
            escalation_policies.create_policy(session, "p", ["0:schedule:nope"], MONDAY)
        policy = escalation_policies.create_policy(
            session, "p", ["0:schedule:primary", "15:user:lead@example.com,channel:ops"], MONDAY
        )
        texts = escalation_policies.step_texts(policy)

    assert texts == ["0:schedule:primary", "15:user:lead@example.com,channel:ops"]


def test_a_failing_sender_leaves_the_step_to_be_tried_again_after_the_lease(
    bridge: Bridge, people: None
) -> None:
    incident_id = setup_policy(bridge, "0:user:a@example.com")
    start(bridge, incident_id, MONDAY)

    def broken(*_args: object) -> None:
        raise RuntimeError("outbox down")

    assert run_due_escalations(bridge, broken, clock=lambda: at(0), worker="w1") == 0
    pager = RecordingPager()
    assert run_jobs(bridge, at(0.5), pager) == 0  # still leased to w1
    assert run_jobs(bridge, at(2), pager) == 1
    assert pager.names == ["a@example.com"]
