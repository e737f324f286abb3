"""Paging people, end to end: signed Sentry deliveries into the real gunicorn, the real
jobs process (`bridge jobs run`) sending from the outbox, and fake receivers on loopback
(tests/fakes: a recording webhook receiver, an aiosmtpd server).

Intervals are shortened through settings only (NOTIFY_ENV in notify_support.py). Two
things are done to the database directly, each where waiting would cost minutes and the
product offers no knob: the storm test moves the digest's due time to now (the end of
its 5-minute window is the only thing that changes then), and the two-process test raises
the service's `storm_threshold` column so that its 40 incidents are sent one by one.
"""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.e2e.notify_support import (
    NOTIFY_ENV,
    deliver,
    deliver_many,
    jobs_running,
    quiet_for,
    setup_service,
    sql,
    start_jobs,
)
from tests.fakes.smtp import FakeSmtpServer
from tests.fakes.webhook_receiver import WebhookReceiver, verify_standard_webhook
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def notify_env(stack: Stack) -> Iterator[None]:
    """Before gunicorn starts: short intervals, and ack links pointing at this server."""
    stack.env.update(NOTIFY_ENV, BRIDGE_PUBLIC_URL=stack.base_url)
    yield


def _types(receiver: WebhookReceiver) -> Counter[str]:
    return Counter(request.json()["type"] for request in receiver.requests)


@pytest.mark.timing
def test_signed_sentry_delivery_reaches_the_webhook_once_within_a_second(
    server: Stack, webhook_receiver: WebhookReceiver
) -> None:
    made = setup_service(server)
    url, sentry_secret = made.url, made.sentry_secret
    created = server.bridge_json(
        "channel", "create", "--service", "checkout", "--kind", "webhook", "--name", "ops-hook",
        "--url", webhook_receiver.url(), "--generate-secret",
    )  # fmt: skip
    hook_secret = created["secret"]
    assert hook_secret.startswith("whsec_")
    assert str(webhook_receiver.port) not in created["target"]  # shown masked
    with jobs_running(server):
        # A test message first: it proves the sender is up (and, on PostgreSQL, LISTENing).
        server.bridge_json("channel", "test", str(created["id"]))
        assert webhook_receiver.wait_for(1)[0].json()["type"] == "test"
        webhook_receiver.reset()

        started = time.monotonic()
        answer = deliver(url, sentry_secret, 1)
        request = webhook_receiver.wait_for(1, timeout=5)[0]
        # From before the request was sent, so an upper bound of commit -> receipt.
        elapsed = time.monotonic() - started
        deliver(url, sentry_secret, 1, variant=1)  # another event: no second message
        quiet_for(0.5)

    assert answer["action"] == "triggered"
    assert len(webhook_receiver.requests) == 1
    assert verify_standard_webhook(hook_secret, request)
    assert not verify_standard_webhook("whsec_" + "A" * 44, request)
    body = request.json()
    assert body["type"] == "incident.triggered"
    assert body["id"] == request.headers["webhook-id"]
    assert body["incident"]["id"] == answer["incident"]["id"]
    assert body["incident"]["title"] == "TypeError: cart 1 is undefined"
    assert body["incident"]["url"] == f"{server.base_url}/incidents/{answer['incident']['id']}"
    assert body["ack_url"].startswith(f"{server.base_url}/ack/")
    assert elapsed < 1.0, f"commit -> receipt took {elapsed:.2f} s"
    [(status, attempts)] = sql(server, "SELECT status, attempts FROM notifications "
                                       "WHERE type = 'incident.triggered'")  # fmt: skip
    assert (status, attempts) == ("sent", 1)


# The digest's count (90 give or take 7) rests on commit order staying close to arrival
# order, which the load of another test stretches (81 was seen beside one).
@pytest.mark.timing
@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_storm_of_a_hundred_issues_sends_ten_and_one_digest(
    server: Stack, webhook_receiver: WebhookReceiver
) -> None:
    made = setup_service(server, webhook_receiver.url())
    url, sentry_secret = made.url, made.sentry_secret
    with jobs_running(server):
        deliver_many(url, sentry_secret, [(i, v) for v in range(2) for i in range(100)])
        # Every incident is in, also any that admission control spooled for the jobs
        # process to apply (it holds them back up to a second).
        deadline = time.monotonic() + 10
        while sql(server, "SELECT count(*) FROM incidents") != [(100,)]:
            assert time.monotonic() < deadline, "not every issue became an incident"
            time.sleep(0.1)
        webhook_receiver.wait_for(10, timeout=10)
        quiet_for(0.5)
        assert _types(webhook_receiver) == {"incident.triggered": 10}
        waiting = "SELECT count(*) FROM notifications WHERE type = 'incidents.digest' "
        assert sql(server, waiting + "AND status = 'queued'") == [(1,)]
        # The window's end, without waiting 5 minutes for it.
        sql(server, "UPDATE notifications SET next_attempt_at = created_at "
                    "WHERE type = 'incidents.digest'")  # fmt: skip
        digest = webhook_receiver.wait_for(11, timeout=5)[10].json()
        quiet_for(0.5)

    assert _types(webhook_receiver) == {"incident.triggered": 10, "incidents.digest": 1}
    assert digest["type"] == "incidents.digest"
    [(incidents, events)] = sql(server, "SELECT count(*), sum(event_count) FROM incidents")
    assert (incidents, events) == (100, 200)
    # The digest stands for exactly what the storm suppressed: every new incident that
    # was not paged alone, each once, whatever order 8 connections committed them in.
    [(suppressed,)] = sql(
        server,
        "SELECT count(*) FROM incidents WHERE id NOT IN (SELECT incident_id "
        "FROM notifications WHERE type = 'incident.triggered')",
    )
    assert digest["count"] == suppressed == 100 - 10
    members = [
        incident_id for (incident_id,) in sql(server, "SELECT incident_id FROM digest_members")
    ]
    assert len(members) == len(set(members)) == suppressed
    assert sql(
        server,
        "SELECT count(*) FROM digest_members WHERE incident_id IN (SELECT incident_id "
        "FROM notifications WHERE type = 'incident.triggered')",
    ) == [(0,)]
    assert len(digest["incidents"]) == 5


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_silence_holds_notifications_and_its_end_sends_each_once(
    server: Stack, webhook_receiver: WebhookReceiver
) -> None:
    made = setup_service(server, webhook_receiver.url())
    url, sentry_secret = made.url, made.sentry_secret
    silence = server.bridge_json(
        "silence", "create", "--service", "checkout", "--minutes", "60", "--reason", "deploy 4.2"
    )
    with jobs_running(server):
        held = deliver(url, sentry_secret, 1)
        deliver(url, sentry_secret, 2)
        quiet_for(0.5)
        assert webhook_receiver.requests == []
        held_rows = sql(server, "SELECT silence_id FROM notifications WHERE status = 'held'")
        assert [row[0] for row in held_rows] == [silence["id"]] * 2

        server.bridge_json("silence", "end", str(silence["id"]))
        webhook_receiver.wait_for(2, timeout=5)
        deliver(url, sentry_secret, 1, variant=1)  # still open: nothing more to say
        quiet_for(0.5)

    received = webhook_receiver.requests
    assert _types(webhook_receiver) == {"incident.triggered": 2}
    assert len({request.headers["webhook-id"] for request in received}) == 2
    assert held["incident"]["status"] == "triggered"  # the incident itself was never held
    timeline = _timeline(server, held["incident"]["id"])
    assert any(f"held back by silence #{silence['id']}: deploy 4.2" in m for m in timeline)
    assert any(m.startswith("Sent incident.triggered to ops-hook") for m in timeline)


@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_503_is_retried_with_the_same_webhook_id(
    server: Stack, webhook_receiver: WebhookReceiver
) -> None:
    made = setup_service(server, webhook_receiver.url())
    url, sentry_secret, hook_secret = made.url, made.sentry_secret, made.hook_secret
    assert hook_secret is not None
    webhook_receiver.respond(503, "busy", times=1)
    with jobs_running(server):
        deliver(url, sentry_secret, 1)
        first, second = webhook_receiver.wait_for(2, timeout=8)
        quiet_for(0.5)

    assert len(webhook_receiver.requests) == 2
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    # The same message, signed afresh (its occurred_at and ack link are the attempt's).
    assert first.json()["type"] == second.json()["type"] == "incident.triggered"
    assert first.json()["incident"] == second.json()["incident"]
    assert verify_standard_webhook(hook_secret, second)
    webhook_id = first.headers["webhook-id"]
    attempts = sql(
        server,
        "SELECT outcome, status_code FROM notification_attempts "
        "WHERE notification_id = :id ORDER BY id",
        id=webhook_id,
    )
    assert [tuple(row) for row in attempts] == [("retry", 503), ("sent", 200)]
    [(status,)] = sql(server, "SELECT status FROM notifications WHERE id = :id", id=webhook_id)
    assert status == "sent"


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_jobs_process_killed_mid_send_loses_nothing(
    server: Stack, webhook_receiver: WebhookReceiver
) -> None:
    made = setup_service(server, webhook_receiver.url())
    url, sentry_secret = made.url, made.sentry_secret
    webhook_receiver.respond(200, "ok", delay=3.0)  # the first answer never comes in time
    jobs = start_jobs(server, "killed")
    try:
        deliver(url, sentry_secret, 1)
        in_flight = webhook_receiver.wait_for(1, timeout=5)[0]
        jobs.kill()
    finally:
        jobs.stop()
    [(status,)] = sql(server, "SELECT status FROM notifications")
    assert status == "sending"  # claimed, sent, never recorded

    with jobs_running(server, "restarted"):
        again = webhook_receiver.wait_for(2, timeout=15)[1]  # after the 5 s lease
        quiet_for(0.5)

    assert again.headers["webhook-id"] == in_flight.headers["webhook-id"]
    assert len(webhook_receiver.requests) == 2
    [(status, attempts)] = sql(server, "SELECT status, attempts FROM notifications")
    assert (status, attempts) == ("sent", 2)


@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_two_jobs_processes_on_postgresql_send_nothing_twice(
    server: Stack, webhook_receiver: WebhookReceiver
) -> None:
    made = setup_service(server, webhook_receiver.url())
    url, sentry_secret = made.url, made.sentry_secret
    sql(server, "UPDATE services SET storm_threshold = 1000")  # every incident its own message
    # A slow-ish receiver, so both senders are busy at the same time.
    webhook_receiver.respond(200, "ok", delay=0.05, times=200)
    with jobs_running(server, "a"), jobs_running(server, "b"):
        deliver_many(url, sentry_secret, [(i, 0) for i in range(40)])
        webhook_receiver.wait_for(40, timeout=20)
        quiet_for(0.5)

    ids = [request.headers["webhook-id"] for request in webhook_receiver.requests]
    assert len(ids) == 40
    assert len(set(ids)) == len(ids)
    [(sent, attempts)] = sql(server, "SELECT count(*), sum(attempts) FROM notifications "
                                     "WHERE status = 'sent'")  # fmt: skip
    assert (sent, attempts) == (40, 40)
    # Each process logs what it sent; between them, every notification exactly once.
    sent_by = [
        log.read_text().count("attempt 1: sent") for log in server.logs if "jobs-" in log.name
    ]
    assert sum(sent_by) == 40
    assert min(sent_by) > 0, f"one process sent everything: {sent_by}"


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_email_carries_an_ack_link_that_confirms_before_acknowledging(
    server: Stack, smtp_server: FakeSmtpServer
) -> None:
    made = setup_service(server)
    url, sentry_secret = made.url, made.sentry_secret
    server.bridge_json(
        "channel", "create", "--service", "checkout", "--kind", "email", "--name", "on-call",
        "--to", "oncall@example.com",
    )  # fmt: skip
    smtp = {"BRIDGE_SMTP_URL": smtp_server.url(), "BRIDGE_SMTP_FROM": "bridge@example.com"}
    with jobs_running(server, **smtp):
        incident_id = deliver(url, sentry_secret, 1)["incident"]["id"]
        assert smtp_server.sink.arrived.wait(5), "no mail arrived"

    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ("oncall@example.com",)
    assert mail.message["Subject"] == "[ERROR] Checkout: TypeError: cart 1 is undefined"
    text = mail.message.get_body(preferencelist=("plain",))
    assert text is not None
    link = next(
        word for word in text.get_content().split() if word.startswith(f"{server.base_url}/ack/")
    )

    with urllib.request.urlopen(link, timeout=10) as page:  # noqa: S310  # loopback
        assert page.status == 200
        assert b"Acknowledge" in page.read()
    assert _status(server, incident_id) == "triggered"  # a GET (a link preview) does nothing

    form = urllib.request.Request(link, data=b"", method="POST")  # noqa: S310
    with urllib.request.urlopen(form, timeout=10) as done:  # noqa: S310  # loopback
        assert b"This link has been used." in done.read()  # the confirmation page again
    assert _status(server, incident_id) == "acknowledged"
    assert any(
        "via notification link to on-call" in note for note in _timeline(server, incident_id)
    )


def _status(server: Stack, incident_id: int) -> str:
    [(status,)] = sql(server, "SELECT status FROM incidents WHERE id = :id", id=incident_id)
    return str(status)


def _timeline(server: Stack, incident_id: int) -> list[str]:
    found = sql(
        server, "SELECT message FROM timeline_entries WHERE incident_id = :id ORDER BY id",
        id=incident_id,
    )  # fmt: skip
    return [str(row[0]) for row in found]
