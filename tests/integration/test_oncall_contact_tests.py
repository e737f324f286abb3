""" "Send me a test" from the page, the API and the CLI; pages counted in /metrics; and the
migration that let notifications address contact methods keeps SQLite's attempt log."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select, text

from app.cli import main
from app.extensions import Bridge
from app.jobs.notify import NotificationSender
from app.services import contacts, notification_outbox
from app.services.accounts import Role
from app.store.database import make_engine
from app.store.migrate import upgrade
from app.store.models import ContactMethod, User
from app.store.notify_models import Notification
from tests.support import pages
from tests.support.databases import cli_env
from tests.support.notify import FakeSend
from tests.support.oncall import ApiCaller, api_token, make_people
from tests.support.pages import csrf_token

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def method_of(bridge: Bridge, email: str) -> int:
    with bridge.database.transaction() as session:
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None
        return contacts.list_methods(session, user, NOW)[0].id


def queued_tests(bridge: Bridge) -> list[Notification]:
    with bridge.database.reading() as session:
        return list(session.scalars(select(Notification).where(Notification.type == "test")))


def log_in(client: FlaskClient, email: str) -> str:
    """Log in; the CSRF token of the contact-methods page."""
    assert pages.log_in(client, email) == 302
    return csrf_token(client, "/contact-methods")


def test_the_button_queues_a_test_to_ones_own_method_only(
    client: FlaskClient, bridge: Bridge
) -> None:
    with bridge.database.transaction() as session:
        make_people(session, NOW, "a@x.example", "b@x.example", verified=False)
    mine, theirs = method_of(bridge, "a@x.example"), method_of(bridge, "b@x.example")
    csrf = log_in(client, "a@x.example")

    page = client.post(
        f"/contact-methods/{mine}/test", data={"csrf_token": csrf}, follow_redirects=True
    ).get_data(as_text=True)
    refused = client.post(
        f"/contact-methods/{theirs}/test", data={"csrf_token": csrf}, follow_redirects=True
    ).get_data(as_text=True)

    assert "Test queued to a@x.example." in page
    assert "not yet: send a test" in page  # pageable only once the test is sent
    assert "someone else&#39;s contact method" in refused  # a form error goes back, flashed
    assert [n.contact_method_id for n in queued_tests(bridge)] == [mine]

    NotificationSender(bridge, FakeSend(), worker="sender").drain()
    page = client.get("/contact-methods").get_data(as_text=True)
    assert "yes, tested" in page


def test_the_api_queues_a_test_for_admins(client: FlaskClient, bridge: Bridge) -> None:
    with bridge.database.transaction() as session:
        admin_token = api_token(session, "admin@x.example", Role.ADMIN, NOW)
        responder_token = api_token(session, "r@x.example", Role.RESPONDER, NOW)
    method = method_of(bridge, "r@x.example")

    answer = ApiCaller(client, admin_token).call("POST", f"/api/contact-methods/{method}/test")
    refused = ApiCaller(client, responder_token).call("POST", f"/api/contact-methods/{method}/test")
    missing = ApiCaller(client, admin_token).call("POST", "/api/contact-methods/999999/test")

    assert answer.status_code == 202
    assert answer.get_json()["contact_method_id"] == method
    assert refused.status_code == 403 and missing.status_code == 404
    assert [n.id for n in queued_tests(bridge)] == [answer.get_json()["notification_id"]]


def test_bridge_contact_test_queues_one_and_sending_it_marks_the_method_tested(
    bridge: Bridge, encryption_key: str, tmp_path: Path
) -> None:
    with bridge.database.transaction() as session:
        make_people(session, NOW, "a@x.example", verified=False)
    method = method_of(bridge, "a@x.example")
    env = cli_env(bridge.database.url, encryption_key, tmp_path)

    result = CliRunner().invoke(main, ["contact", "test", str(method)], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["contact_method_id"] == method
    send = FakeSend()
    NotificationSender(bridge, send, worker="sender").drain()

    assert [(t.kind, t.recipients) for t, _m in send.calls] == [("email", ("a@x.example",))]
    with bridge.database.reading() as session:
        stored = session.get(ContactMethod, method)
        assert stored is not None and stored.tested_at is not None


def test_pages_count_in_the_metrics_under_their_method_kind(
    client: FlaskClient, bridge: Bridge
) -> None:
    with bridge.database.transaction() as session:
        make_people(session, NOW, "a@x.example")
    with bridge.database.transaction() as session:
        notification_outbox.queue_method_test(
            session, contacts.get_method(session, method_of(bridge, "a@x.example")), NOW
        )
    NotificationSender(bridge, FakeSend(), worker="sender").drain()

    metrics = client.get("/metrics").get_data(as_text=True)

    assert 'bridge_notifications_total{kind="email",outcome="sent"} 1.0' in metrics


def test_the_migration_keeps_sqlites_attempt_log(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0005_i15_schedules")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO services (id, name, slug, reopen_window_minutes, created_at,"
                " storm_threshold, storm_window_minutes, page_min_severity)"
                " VALUES (1, 's', 's', 60, '2026-01-01 00:00:00', 10, 5, 'error')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO notification_channels VALUES"
                " (1, 1, 'webhook', 'w', 1, 'error', 'triggered', 'x', 'm', '2026-01-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO notifications (id, channel_id, type, document, status, attempts,"
                " next_attempt_at, created_at) VALUES ('n1', 1, 'test', '{}', 'sent', 1,"
                " '2026-01-01', '2026-01-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO notification_attempts (notification_id, at, outcome, latency_ms)"
                " VALUES ('n1', '2026-01-01', 'sent', 1.0)"
            )
        )
    engine.dispose()

    upgrade(url)

    engine = make_engine(url)
    with engine.connect() as connection:
        attempts = connection.execute(text("SELECT count(*) FROM notification_attempts"))
        assert attempts.scalar() == 1
    engine.dispose()
