"""Random sequences of deliveries and people's actions through the real ingest service.

A hypothesis state machine on a SQLite database of its own: Sentry triggers,
acknowledgements, resolutions and comments for a few issues, late (stale) deliveries,
re-sent Request-IDs and people acting on incidents, in any order. After every step:
at most one open incident per key, each incident's event count equals the triggers
applied to it, no stale delivery changed a status, and a re-sent Request-ID changed
nothing.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import select

from app.domain.errors import IllegalTransition
from app.domain.lifecycle import HumanAction
from app.services import catalog
from app.services.delivery_records import InboundDelivery
from app.services.incidents import act_on_incident
from app.services.ingest import ingest_delivery
from app.store.database import Database
from app.store.encryption import SecretBox
from app.store.migrate import upgrade
from app.store.models import Incident
from tests.support.payloads import build, load

T0 = 1_790_000_000
ISSUES = st.sampled_from(["101", "202"])
LAGS = st.sampled_from([0, 0, 0, 1, 30, 600, 4000])  # seconds a delivery arrives late
APPLIED_TRIGGERS = {"triggered", "deduplicated", "reopened"}


@pytest.fixture(scope="module")
def lifecycle_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    path: Path = tmp_path_factory.mktemp("lifecycle") / "bridge.db"
    upgrade(f"sqlite:///{path}")
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


def payload(kind: str, issue_id: str) -> tuple[str, dict[str, Any]]:
    fixture = {
        "trigger": "integration_issue_created",
        "regression": "integration_issue_unresolved",
        "acknowledge": "integration_issue_archived",
        "resolve": "integration_issue_resolved",
        "comment": "integration_comment_created",
    }[kind]
    resource, body = load(fixture)
    assert resource is not None
    if kind == "comment":
        body["data"]["issue_id"] = issue_id
    else:
        body["data"]["issue"]["id"] = issue_id
    return resource, body


class Lifecycle(RuleBasedStateMachine):
    database: Database
    secrets: SecretBox

    def __init__(self) -> None:
        super().__init__()
        self.clock = datetime.fromtimestamp(T0, UTC)
        self.applied: Counter[int] = Counter()
        self.sent: list[InboundDelivery] = []

    @initialize()
    def make_integration(self) -> None:
        with self.database.transaction() as session:
            service = catalog.create_service(
                session, f"fuzz-{uuid.uuid4().hex[:10]}", self.clock, reopen_window_minutes=30
            )
            self.service_id = service.id
            made = catalog.create_integration(session, self.secrets, service, self.clock)
            self.integration_id = made.integration.id

    # ---------------------------------------------------------------- helpers

    def incidents(self) -> list[Incident]:
        with self.database.transaction() as session:
            return list(
                session.scalars(
                    select(Incident)
                    .where(Incident.service_id == self.service_id)
                    .order_by(Incident.id)
                )
            )

    def snapshot(self) -> dict[int, tuple[Any, ...]]:
        return {
            i.id: (i.status, i.last_transition_at, i.resolved_at, i.event_count, i.severity)
            for i in self.incidents()
        }

    def deliver(self, inbound: InboundDelivery) -> Any:
        with self.database.transaction() as session:
            outcome = ingest_delivery(session, inbound, self.secrets, 1024 * 1024)
            assert outcome.error is None, outcome.error
            return (outcome.action, outcome.incident.id if outcome.incident else None)

    def send(self, kind: str, issue_id: str, lag: int) -> tuple[str, int | None]:
        resource, body = payload(kind, issue_id)
        stamp = int(self.clock.timestamp()) - lag
        delivery = build(body, resource=resource, timestamp=stamp)
        inbound = InboundDelivery(
            integration_id=self.integration_id,
            body=delivery.body,
            received_at=self.clock,
            content_type="application/json",
            request_id=delivery.headers["Request-ID"],
            hook_resource=resource,
            hook_timestamp=delivery.headers["Sentry-Hook-Timestamp"],
        )
        news_at = min(datetime.fromtimestamp(stamp, UTC) + timedelta(seconds=1), self.clock)
        before = self.snapshot()
        action, incident_id = self.deliver(inbound)
        self.sent.append(inbound)
        if action in APPLIED_TRIGGERS:
            assert incident_id is not None
            self.applied[incident_id] += 1
        self.assert_no_stale_transition(before, self.snapshot(), news_at)
        return action, incident_id

    @staticmethod
    def assert_no_stale_transition(
        before: dict[int, tuple[Any, ...]], after: dict[int, tuple[Any, ...]], news_at: datetime
    ) -> None:
        for incident_id, (status, last_transition_at, resolved_at, *_rest) in before.items():
            new_status = after[incident_id][0]
            if new_status == status:
                continue
            if status == "resolved":  # reopened: only by news strictly after the resolution
                assert resolved_at is not None and news_at > resolved_at
            else:  # acknowledged or resolved: not by news older than the last change
                assert news_at >= last_transition_at

    # ---------------------------------------------------------------- rules

    @rule(seconds=st.sampled_from([1, 5, 60, 600, 1900]))
    def time_passes(self, seconds: int) -> None:
        self.clock += timedelta(seconds=seconds)

    @rule(issue=ISSUES, lag=LAGS, kind=st.sampled_from(["trigger", "regression"]))
    def sentry_triggers(self, issue: str, lag: int, kind: str) -> None:
        action, _ = self.send(kind, issue, lag)
        assert action in APPLIED_TRIGGERS | {"ignored"}

    @rule(issue=ISSUES, lag=LAGS)
    def sentry_acknowledges(self, issue: str, lag: int) -> None:
        self.send("acknowledge", issue, lag)

    @rule(issue=ISSUES, lag=LAGS)
    def sentry_resolves(self, issue: str, lag: int) -> None:
        self.send("resolve", issue, lag)

    @rule(issue=ISSUES, lag=LAGS)
    def sentry_comments(self, issue: str, lag: int) -> None:
        self.send("comment", issue, lag)

    @precondition(lambda self: bool(self.sent))
    @rule(pick=st.integers(min_value=0))
    def sentry_sends_a_request_id_again(self, pick: int) -> None:
        again = self.sent[pick % len(self.sent)]
        before = self.snapshot()

        action, _ = self.deliver(again)

        assert action == "duplicate_delivery"
        assert self.snapshot() == before

    @precondition(lambda self: bool(self.snapshot()))
    @rule(pick=st.integers(min_value=0), action=st.sampled_from(list(HumanAction)))
    def a_person_acts(self, pick: int, action: HumanAction) -> None:
        ids = sorted(self.snapshot())
        incident_id = ids[pick % len(ids)]
        try:
            with self.database.transaction() as session:
                act_on_incident(session, incident_id, action, "fuzz@example.com", self.clock)
        except IllegalTransition:
            pass

    # ---------------------------------------------------------------- invariants

    @invariant()
    def at_most_one_open_incident_per_key(self) -> None:
        open_keys = [i.dedup_key for i in self.incidents() if i.status != "resolved"]
        assert len(open_keys) == len(set(open_keys))

    @invariant()
    def event_count_equals_the_triggers_applied(self) -> None:
        counted = {i.id: i.event_count for i in self.incidents()}
        assert counted == {i: self.applied[i] for i in counted}


def test_any_sequence_of_deliveries_keeps_the_lifecycle_invariants(
    lifecycle_db: Database,
) -> None:
    Lifecycle.database = lifecycle_db
    Lifecycle.secrets = SecretBox((Fernet.generate_key().decode("ascii"),))
    runner = Lifecycle.TestCase()
    runner.settings = settings(
        max_examples=40,
        stateful_step_count=30,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    runner.runTest()
