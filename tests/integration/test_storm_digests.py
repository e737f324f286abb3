"""A storm's digest stands for exactly the incidents whose pages it suppressed (SPEC 7),
on SQLite and PostgreSQL: each such incident is one digest_members row of one digest per
channel, written with the incident, and the digest's count is its members."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select, text, update

from app.extensions import Bridge
from app.jobs.spool_drain import run_spool_drain
from app.services import notification_outbox, retention, silences
from app.store import queries
from app.store.models import Incident, Service
from app.store.notify_models import DigestMember, Notification
from tests.support.integrations import MadeIntegration
from tests.support.notify import Clock, FakeSend, make_channel, outbox, send_sentry, sender

Make = Callable[..., MadeIntegration]
DIGEST = "incidents.digest"


def storm_threshold(bridge: Bridge, service: str, threshold: int) -> None:
    with bridge.database.transaction() as session:
        found = queries.get_service_by_name(session, service)
        assert found is not None
        found.storm_threshold = threshold


def members(bridge: Bridge, channel_id: int) -> dict[str, set[int]]:
    """The channel's digests (by id), each with the incidents it stands for."""
    with bridge.database.reading() as session:
        found: dict[str, set[int]] = {
            n.id: set() for n in outbox(bridge, channel_id) if n.type == DIGEST
        }
        rows = session.execute(
            select(DigestMember.notification_id, DigestMember.incident_id).where(
                DigestMember.notification_id.in_(found)
            )
        )
        for digest_id, incident_id in rows:
            found[digest_id].add(incident_id)
    return found


def paged_alone(bridge: Bridge, channel_id: int) -> set[int]:
    """The incidents the channel heard of one by one."""
    return {
        n.incident_id
        for n in outbox(bridge, channel_id)
        if n.type == "incident.triggered" and n.incident_id is not None
    }


def incident_ids(bridge: Bridge) -> set[int]:
    with bridge.database.reading() as session:
        return set(session.scalars(select(Incident.id)))


def close_windows(bridge: Bridge) -> None:
    """Every waiting digest's window ends now (the product has no knob for a shorter one
    than a minute, and the test would wait that long)."""
    with bridge.database.transaction() as session:
        session.execute(
            update(Notification)
            .where(Notification.type == DIGEST, Notification.attempts == 0)
            .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def test_concurrent_openers_put_each_suppressed_incident_in_exactly_one_digest_per_channel(
    app: Flask, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    channels = [make_channel(bridge, integration.service, name=n) for n in ("a", "b")]
    storm_threshold(bridge, integration.service, 3)
    threads_count, per_thread = 8, 12
    start = threading.Barrier(threads_count + 1, timeout=30)
    halfway = threading.Barrier(threads_count + 1, timeout=60)
    openers_done = threading.Event()
    failures: list[BaseException] = []
    send = FakeSend()
    work = sender(bridge, send)

    def open_incidents(thread: int) -> None:
        client = app.test_client()
        start.wait()
        try:
            for n in range(per_thread):
                if n == per_thread // 2:
                    halfway.wait()
                send_sentry(client, integration, issue_id=f"{thread}{n:03d}")
        except BaseException as error:  # reported below, with the thread's own traceback
            failures.append(error)
            halfway.abort()

    def close_and_send() -> None:
        # The jobs process's part: windows close and digests are claimed while the storm
        # still opens incidents (each claim races the openers looking for a waiting
        # digest), and what admission control spooled is applied meanwhile.
        def step() -> None:
            run_spool_drain(bridge, hold_while_spooling=False)
            close_windows(bridge)
            work.run_once()

        start.wait()
        try:
            while halfway.n_waiting < threads_count and not halfway.broken:
                step()
            step()  # at least one window closed and its digest claimed mid-storm
            halfway.wait()
            while not openers_done.is_set():
                step()
        except BaseException as error:
            failures.append(error)
            halfway.abort()

    openers = [threading.Thread(target=open_incidents, args=(t,)) for t in range(threads_count)]
    closer = threading.Thread(target=close_and_send)
    for thread in [*openers, closer]:
        thread.start()
    for thread in openers:
        thread.join(timeout=120)
    openers_done.set()
    closer.join(timeout=30)
    run_spool_drain(bridge, hold_while_spooling=False)
    close_windows(bridge)
    work.drain()

    assert failures == []
    everything = incident_ids(bridge)
    assert len(everything) == threads_count * per_thread
    for channel_id in channels:
        paged = paged_alone(bridge, channel_id)
        assert len(paged) == 3  # the threshold, exactly, in commit order
        digests = members(bridge, channel_id)
        assert len(digests) >= 2  # a window closed while the storm went on (halfway)
        counted = Counter(i for incidents in digests.values() for i in incidents)
        assert max(counted.values()) == 1  # no incident in two digests
        assert set(counted) == everything - paged  # and none left out
        for notification in outbox(bridge, channel_id):
            if notification.type == DIGEST:
                assert notification.status == "sent"
                assert notification.document["count"] == len(digests[notification.id]) > 0
    sent_counts = [m.document["count"] for _t, m in send.calls if m.type == DIGEST]
    assert sum(sent_counts) == 2 * (threads_count * per_thread - 3)


def _blocked_by(bridge: Bridge, pid: int) -> bool:
    with bridge.database.engine.connect() as connection:
        waiting = connection.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"),
            {"pid": pid},
        ).scalar_one()
    return bool(waiting)


def test_an_opener_racing_the_digests_claim_opens_the_next_window(
    app: Flask, client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    if not bridge.database.is_postgresql:
        pytest.skip("SQLite's writers never overlap; the race is between PostgreSQL rows")
    integration = make_integration()
    channel = make_channel(bridge, integration.service)
    storm_threshold(bridge, integration.service, 1)
    send_sentry(client, integration, issue_id="1")  # sent alone
    in_first = send_sentry(client, integration, issue_id="2")["incident"]["id"]  # the storm
    sender(bridge, FakeSend()).drain()
    [first] = members(bridge, channel)
    answers: list[dict[str, object]] = []
    racer = threading.Thread(
        target=lambda: answers.append(send_sentry(app.test_client(), integration, issue_id="3"))
    )
    window_end = Clock()
    window_end.advance(minutes=5, seconds=1)

    # The sender claims the digest at its window's end; an opener whose clock still
    # reads "in the window" looks for it before the claim commits.
    with bridge.database.transaction() as session:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        [claimed] = notification_outbox.claim_due(
            session, window_end(), 20, timedelta(minutes=1), "w1"
        )
        racer.start()
        deadline = time.monotonic() + 10
        while not _blocked_by(bridge, pid):
            assert time.monotonic() < deadline, "the opener never waited for the claim"
            time.sleep(0.05)
    racer.join(timeout=30)

    [answer] = answers
    in_next = answer["incident"]["id"]  # type: ignore[index]
    assert claimed.id == first and claimed.document["count"] == 1
    digests = members(bridge, channel)
    assert digests.pop(first) == {in_first}  # what it counted is what it stands for
    assert list(digests.values()) == [{in_next}]


def test_a_digest_being_retried_takes_no_more_and_the_next_incident_opens_a_window(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    from app.channels.base import SendResult

    integration = make_integration()
    channel = make_channel(bridge, integration.service)
    storm_threshold(bridge, integration.service, 1)
    send_sentry(client, integration, issue_id="1")
    in_first = send_sentry(client, integration, issue_id="2")["incident"]["id"]
    clock = Clock()
    send = FakeSend(script=[SendResult("sent"), SendResult("retry", error="503")])
    work = sender(bridge, send, clock)
    work.drain()  # the page
    clock.advance(minutes=5, seconds=1)
    work.drain()  # the digest, answered 503: queued again, its count kept

    in_next = send_sentry(client, integration, issue_id="3")["incident"]["id"]
    clock.advance(minutes=11)
    work.drain()

    digests = {min(m): d for d, m in members(bridge, channel).items()}
    assert set(digests) == {in_first, in_next}
    assert members(bridge, channel)[digests[in_first]] == {in_first}
    sent = Counter(
        (m.notification_id, m.document["count"]) for _t, m in send.calls if m.type == DIGEST
    )
    # The first digest twice (the 503, then the same message again), the second once.
    assert sent == {(digests[in_first], 1): 2, (digests[in_next], 1): 1}


def test_an_incident_a_silence_holds_during_a_storm_is_held_not_digested(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    channel = make_channel(bridge, integration.service)
    storm_threshold(bridge, integration.service, 1)
    send_sentry(client, integration, issue_id="1", title="Timeout talking to PSP")
    digested = send_sentry(client, integration, issue_id="2", title="Timeout again")
    clock = Clock()
    with bridge.database.transaction() as session:
        service = queries.get_service_by_name(session, integration.service)
        assert service is not None
        silences.create_silence(
            session,
            service,
            clock(),
            until=clock() + timedelta(hours=1),
            reason="known",
            created_by="ana@example.com",
            match_text="cart",
        )
    held = send_sentry(client, integration, issue_id="3", title="TypeError: cart is undefined")

    [digest] = members(bridge, channel).values()
    assert digest == {digested["incident"]["id"]}
    held_rows = [n for n in outbox(bridge, channel) if n.status == "held"]
    assert [n.incident_id for n in held_rows] == [held["incident"]["id"]]


def test_digest_members_go_with_their_incident_their_digest_and_their_service(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    channel = make_channel(bridge, integration.service)
    storm_threshold(bridge, integration.service, 1)
    for issue in range(4):
        send_sentry(client, integration, issue_id=str(issue))
    [digest] = members(bridge, channel)
    gone, kept, *_ = sorted(members(bridge, channel)[digest])

    with bridge.database.transaction() as session:  # retention keeps incidents
        retention.prune_deliveries(session, datetime.now(UTC) + timedelta(days=1))
    assert len(members(bridge, channel)[digest]) == 3
    with bridge.database.transaction() as session:
        session.execute(delete(Incident).where(Incident.id == gone))
    assert gone not in members(bridge, channel)[digest]
    assert kept in members(bridge, channel)[digest]
    with bridge.database.transaction() as session:
        session.execute(delete(Notification).where(Notification.id == digest))
    with bridge.database.reading() as session:
        assert session.scalars(select(DigestMember)).all() == []

    send_sentry(client, integration, issue_id="9")  # a new window, a new member
    assert [len(m) for m in members(bridge, channel).values()] == [1]
    with bridge.database.transaction() as session:
        session.execute(delete(Service).where(Service.name == integration.service))
    with bridge.database.reading() as session:
        assert session.scalars(select(DigestMember)).all() == []
