"""How many statements one delivery costs: the round trips are what ingest throughput is
made of (docs/benchmarks.md), so a change that adds one should be a decision, not a
side effect. Counted at the driver, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import event

from app.extensions import Bridge
from tests.support.integrations import MadeIntegration
from tests.support.notify import make_channel, outbox
from tests.support.payloads import build
from tests.support.receiver import T0, issue, post, send_issue

Make = Callable[..., MadeIntegration]


@contextmanager
def statements(bridge: Bridge) -> Iterator[list[str]]:
    """Every statement the engine sends while the block runs (BEGIN/COMMIT included)."""
    sent: list[str] = []

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement.split(None, 1)[0].upper())

    def on_commit(_conn: Any) -> None:
        sent.append("COMMIT")

    engine = bridge.database.engine
    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_commit)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "commit", on_commit)


def test_an_event_of_an_open_incident_costs_two_statements_on_postgresql(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="s3cr3t")
    send_issue(client, integration, "created", T0)

    later_event = build(
        issue("created", last_seen=T0 + 60), resource="issue", secret="s3cr3t", timestamp=T0 + 60
    )

    with statements(bridge) as sent:
        answer = post(client, integration, later_event).get_json()

    assert answer["action"] == "deduplicated"
    if bridge.database.is_postgresql:
        # The delivery was read with the worker's copy of the integration before the
        # transaction, so one statement stores it, checks the copy, claims the Request-ID
        # and the signed body's hash and locks the incident; then finish (delivery decision
        # + incident + timeline), sent with the COMMIT in one pipeline (one round trip for
        # both: database.execute_at_commit); psycopg's BEGIN is implicit.
        assert sent == ["WITH", "WITH", "COMMIT"]
    else:
        # SQLite has no data-modifying CTEs: the same steps one statement each (the
        # delivery's INSERT checks the worker's copy of the integration; the body claim is
        # the second INSERT after the delivery's).
        assert sent == [
            "BEGIN", "INSERT", "INSERT", "INSERT", "SELECT", "UPDATE", "INSERT", "UPDATE",
            "COMMIT",
        ]  # fmt: skip


def test_an_events_last_statement_shares_the_commits_round_trip(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="s3cr3t")
    send_issue(client, integration, "created", T0)
    later_event = build(
        issue("created", last_seen=T0 + 60), resource="issue", secret="s3cr3t", timestamp=T0 + 60
    )
    pipelined: list[bool] = []

    def on_statement(_conn: Any, cursor: Any, *_: Any) -> None:
        pgconn = getattr(cursor.connection, "pgconn", None)
        pipelined.append(pgconn is not None and bool(pgconn.pipeline_status))

    event.listen(bridge.database.engine, "before_cursor_execute", on_statement)
    try:
        answer = post(client, integration, later_event).get_json()
    finally:
        event.remove(bridge.database.engine, "before_cursor_execute", on_statement)

    assert answer["action"] == "deduplicated"
    if bridge.database.is_postgresql:
        # The store-claim-lock statement waits for its rows; finish goes with the COMMIT.
        assert pipelined == [False, True]
    else:
        assert not any(pipelined)  # in the process: nothing to pipeline


def test_a_new_incident_adds_only_its_own_writes(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="s3cr3t")

    with statements(bridge) as sent:
        answer = send_issue(client, integration, "created", T0)

    assert answer["action"] == "triggered"
    # On top of those: the reopen-candidate look-up, the Sentry project's name (learnt
    # here: the issue names it; a slug-only delivery reads it instead), the incident
    # INSERT and the enrichment job INSERT (no look for a queued job: the incident is new),
    # and, as the incident event `triggered` happened, the look for the service's channels
    # (none).
    if bridge.database.is_postgresql:
        assert sent == [
            "WITH", "WITH", "SELECT", "INSERT", "INSERT", "INSERT", "WITH", "SELECT", "COMMIT",
        ]  # fmt: skip
    else:
        assert sent == [
            "BEGIN", "SELECT", "INSERT", "INSERT", "INSERT", "SELECT", "SELECT", "INSERT",
            "INSERT", "INSERT", "INSERT", "UPDATE", "SELECT", "COMMIT",
        ]  # fmt: skip


def test_a_sentry_event_costs_one_statement_more_for_its_event_id(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    """Only event formats carry an event id: the claim that makes Sentry's retries count
    once is theirs alone (issue webhooks above do without it)."""
    integration = make_integration(secret="s3cr3t")
    send_issue(client, integration, "created", T0)
    alert = build("integration_event_alert_triggered", secret="s3cr3t", timestamp=T0 + 60)

    with statements(bridge) as sent:
        answer = post(client, integration, alert).get_json()

    assert answer["action"] == "deduplicated"
    if bridge.database.is_postgresql:
        assert sent == ["WITH", "INSERT", "WITH", "COMMIT"]
    else:
        assert sent == [
            "BEGIN", "INSERT", "INSERT", "INSERT", "SELECT", "INSERT", "UPDATE", "INSERT",
            "UPDATE", "COMMIT",
        ]  # fmt: skip


def test_a_new_incident_with_channels_queues_them_in_one_insert(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="s3cr3t")
    for name in ("ops-webhook", "ops-slack", "ops-pager"):
        make_channel(bridge, integration.service, name=name)

    with statements(bridge) as sent:
        answer = send_issue(client, integration, "created", T0)

    assert answer["action"] == "triggered"
    assert len(outbox(bridge)) == 3
    # Notifying adds three statements whatever the number of channels: the channels (the
    # service row locked on PostgreSQL), the storm count with the active silences, and one
    # multi-row INSERT (on PostgreSQL carrying the NOTIFY that wakes the sender).
    if bridge.database.is_postgresql:
        assert sent == [
            "WITH", "WITH", "SELECT", "INSERT", "INSERT", "INSERT", "WITH", "SELECT", "SELECT",
            "WITH", "COMMIT",
        ]  # fmt: skip
    else:
        assert sent == [
            "BEGIN", "SELECT", "INSERT", "INSERT", "INSERT", "SELECT", "SELECT", "INSERT",
            "INSERT", "INSERT", "INSERT", "UPDATE", "SELECT", "SELECT", "INSERT", "COMMIT",
        ]  # fmt: skip


def test_an_event_of_an_open_incident_with_channels_costs_nothing_more(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="s3cr3t")
    make_channel(bridge, integration.service)
    send_issue(client, integration, "created", T0)

    with statements(bridge) as sent:
        answer = send_issue(client, integration, "created", T0 + 60, last_seen=T0 + 60)

    assert answer["action"] == "deduplicated"
    # No incident event, so no notification work at all (SQLite: one INSERT more, for the
    # signed body's claim).
    expected = 3 if bridge.database.is_postgresql else 9
    assert len(sent) == expected


def test_a_repeated_delivery_is_told_its_first_without_a_look_up(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    """Sentry's retry of a delivery already applied: the claim that fails names the
    delivery that holds it in the same statement (PostgreSQL; SQLite asks separately)."""
    integration = make_integration(secret="s3cr3t")
    send_issue(client, integration, "created", T0)
    later_event = build(
        issue("created", last_seen=T0 + 60), resource="issue", secret="s3cr3t", timestamp=T0 + 60
    )
    first = post(client, integration, later_event).get_json()

    with statements(bridge) as sent:
        again = post(client, integration, later_event).get_json()

    assert again["action"] == "duplicate_delivery"
    assert f"(delivery {first['delivery_id']})" in again["reason"]
    if bridge.database.is_postgresql:
        assert sent == ["WITH", "UPDATE", "COMMIT"]
    else:
        # The Request-ID's claim refused, its holder looked up, the incident read.
        assert sent == [
            "BEGIN", "INSERT", "INSERT", "SELECT", "SELECT", "UPDATE", "COMMIT",
        ]  # fmt: skip
