"""Storm control, silences and concurrent senders, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.domain.errors import Conflict
from app.extensions import Bridge
from app.services import notification_outbox, silences
from app.store import queries
from app.store.models import TimelineEntry
from app.store.notify_models import Notification
from tests.support.integrations import MadeIntegration
from tests.support.notify import Clock, FakeSend, make_channel, outbox, send_sentry, sender

Make = Callable[..., MadeIntegration]
T0 = 1_790_000_000


def kinds(bridge: Bridge, incident_id: int) -> list[str]:
    with bridge.database.reading() as session:
        return list(
            session.scalars(
                select(TimelineEntry.kind)
                .where(TimelineEntry.incident_id == incident_id)
                .order_by(TimelineEntry.id)
            )
        )


def silence(bridge: Bridge, service: str, clock: Clock, minutes: int = 60, **options: str) -> int:
    with bridge.database.transaction() as session:
        target = queries.get_service_by_name(session, service)
        assert target is not None
        created = silences.create_silence(
            session,
            target,
            clock(),
            until=clock() + timedelta(minutes=minutes),
            reason=options.pop("reason", "deploying"),
            created_by="ana@example.com",
            **options,
        )
        return created.id


# ---------------------------------------------------------------- storm control


def test_a_storm_sends_ten_incidents_then_one_digest_per_channel(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    first = make_channel(bridge, integration.service, name="first")
    second = make_channel(bridge, integration.service, name="second")
    for issue in range(100):
        for repeat in range(3):  # deliveries of one issue add nothing
            send_sentry(client, integration, issue_id=str(1000 + issue), at=T0 + repeat)
    clock = Clock()
    send = FakeSend()
    work = sender(bridge, send, clock)

    work.drain()
    assert send.types() == ["incident.triggered"] * 20  # the digest waits for its window
    clock.advance(minutes=5, seconds=1)
    work.drain()

    for channel_id in (first, second):
        sent = [n for n in outbox(bridge, channel_id) if n.status == "sent"]
        assert len(sent) == 11  # 10 + 1
        assert [n.type for n in sent].count("incidents.digest") == 1
    digest = send.calls[-1][1]
    assert digest.type == "incidents.digest"
    assert digest.document["count"] == 90
    assert len(digest.document["incidents"]) == 5
    assert "service=" in digest.document["url"] and "status=triggered" in digest.document["url"]


def test_storm_settings_are_per_service(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service)
    with bridge.database.transaction() as session:
        service = queries.get_service_by_name(session, integration.service)
        assert service is not None
        service.storm_threshold = 2
    for issue in range(4):
        send_sentry(client, integration, issue_id=str(2000 + issue), at=T0)

    assert sorted(n.type for n in outbox(bridge)) == [
        "incident.triggered",
        "incident.triggered",
        "incidents.digest",
    ]


# ---------------------------------------------------------------- silences


def test_a_silence_holds_notifications_and_its_end_sends_each_once(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service)
    clock = Clock()
    silence_id = silence(bridge, integration.service, clock)
    incident_id = send_sentry(client, integration, at=T0)["incident"]["id"]
    send_sentry(client, integration, level="fatal", at=T0 + 60)  # a rise, also held
    send = FakeSend()
    work = sender(bridge, send, clock)

    work.drain()

    assert send.calls == []
    assert [n.status for n in outbox(bridge)] == ["held", "held"]
    assert kinds(bridge, incident_id).count("notification_held") == 2
    with bridge.database.reading() as session:
        held = session.scalars(
            select(TimelineEntry).where(TimelineEntry.kind == "notification_held")
        ).first()
        assert held is not None and f"silence #{silence_id}: deploying" in held.message

    with bridge.database.transaction() as session:
        silences.end_silence(session, silence_id, clock())
    work.drain()
    work.release_silences()
    work.drain()

    assert send.types() == ["incident.triggered"]  # once, with the incident as it is now
    assert send.calls[0][1].document["incident"]["severity"] == "critical"
    assert "notification_released" in kinds(bridge, incident_id)
    with pytest.raises(Conflict), bridge.database.transaction() as session:
        silences.end_silence(session, silence_id, clock())


def test_a_matching_silence_holds_only_the_incidents_it_names(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service)
    clock = Clock()
    silence(bridge, integration.service, clock, match_text="cart is UNDEFINED")
    send_sentry(client, integration, issue_id="1", title="TypeError: cart is undefined", at=T0)
    send_sentry(client, integration, issue_id="2", title="Timeout talking to PSP", at=T0)

    assert sorted(n.status for n in outbox(bridge)) == ["held", "queued"]


def test_an_expired_silence_releases_only_what_is_still_triggered(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service)
    clock = Clock()
    silence(bridge, integration.service, clock, minutes=10)
    send_sentry(client, integration, issue_id="1", at=T0)
    send_sentry(client, integration, issue_id="2", at=T0)
    send_sentry(client, integration, "resolved", issue_id="2", at=T0 + 60)
    send = FakeSend()
    work = sender(bridge, send, clock)

    clock.advance(minutes=10)
    assert work.release_silences() == 1
    assert work.release_silences() == 0  # once
    work.drain()

    [(_target, message)] = send.calls
    assert message.document["incident"]["dedup_key"] == "sentry-1"


def test_a_silence_must_end_in_the_future_and_say_why(
    bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    clock = Clock()
    from app.domain.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused, bridge.database.transaction() as session:
        service = queries.get_service_by_name(session, integration.service)
        assert service is not None
        silences.create_silence(
            session, service, clock(), until=clock(), reason=" ", created_by="ana"
        )
    assert set(refused.value.details["fields"]) == {"reason", "until"}


# ---------------------------------------------------------------- concurrent senders


def test_two_claimers_on_postgresql_never_claim_one_row_twice(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    if not bridge.database.is_postgresql:
        pytest.skip("SQLite runs one jobs process; row locks are PostgreSQL's")
    integration = make_integration()
    for name in ("a", "b", "c", "d", "e"):
        make_channel(bridge, integration.service, name=name)
    for issue in range(8):
        send_sentry(client, integration, issue_id=str(3000 + issue), at=T0)
    assert len(outbox(bridge)) == 40
    clock = Clock()
    lease = timedelta(minutes=1)
    claimed: dict[str, list[str]] = {"one": [], "two": []}
    both_hold_locks = threading.Barrier(2, timeout=10)

    def claim(worker: str) -> None:
        for _round in range(3):
            with bridge.database.transaction() as session:
                rows = notification_outbox.claim_due(session, clock(), 7, lease, worker)
                claimed[worker].extend(row.id for row in rows)
                both_hold_locks.wait()  # neither commits before the other claimed

    threads = [threading.Thread(target=claim, args=(w,)) for w in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # 3 rounds of 7 each would be 42: all 40 were claimed, each by exactly one of them.
    assert len(claimed["one"]) + len(claimed["two"]) == 40
    assert not set(claimed["one"]) & set(claimed["two"])
    with bridge.database.reading() as session:
        leased = session.scalars(select(Notification.leased_by)).all()
    assert sorted(set(leased)) == ["one", "two"]
