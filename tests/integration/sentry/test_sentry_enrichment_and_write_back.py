"""Enrichment and write-back through HTTP: webhook in, job row, jobs run, fake Sentry called."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text, update

from app.extensions import Bridge
from app.services import sentry_jobs
from app.store.models import Incident, SentryJob, TimelineEntry
from tests.fakes.sentry_server import APP_UUID, FakeSentry
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build, load
from tests.support.sentry import Person

API = "/api/v2/integrations/sentry"
ORG = "acme-gmbh"
API_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sentry_api"
ISSUE_PATH = r"/issues/4512345678/$"


def api_fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((API_FIXTURES / f"{name}.json").read_text())
    return document


@pytest.fixture
def connected(
    client: FlaskClient, fake: FakeSentry, admin_person: Person, hook: MadeIntegration
) -> str:
    """The org is connected through the public integration; its issue 4512345678 exists."""
    installed = fake.install(ORG, uuid="7a3c9f2e-5b1d-4e8a-9c6f-2d4b8e1a0f37")
    state = client.post(
        f"{API}/initiate", json={"integration_id": hook.id}, headers=admin_person.headers
    ).get_json()["data"]["state"]
    answer = client.get(
        f"{API}/oauth/callback",
        query_string={
            "code": installed.code,
            "installationId": installed.uuid,
            "orgSlug": ORG,
            "state": state,
        },
    )
    assert answer.status_code == 200, answer.get_json()
    issue = api_fixture("issue") | {
        "id": "4512345678",
        "permalink": f"https://{ORG}.sentry.io/issues/4512345678/",
    }
    fake.add_issue(ORG, issue, api_fixture("latest_event"))
    return installed.uuid


def deliver(
    client: FlaskClient, hook: MadeIntegration, name: str, **changes: Any
) -> dict[str, Any]:
    resource, payload = load(name)
    for key, value in changes.items():
        payload[key] = value
    delivery = build(payload, resource=resource, secret=hook.secret)
    response = client.post(hook.url, data=delivery.body, headers=delivery.headers)
    assert response.status_code == 202, response.get_json()
    document: dict[str, Any] = response.get_json()
    return document


def jobs(bridge: Bridge) -> list[SentryJob]:
    with bridge.database.transaction() as session:
        return list(session.scalars(select(SentryJob).order_by(SentryJob.id)))


def incident(bridge: Bridge, incident_id: int) -> Incident:
    with bridge.database.transaction() as session:
        found = session.get(Incident, incident_id)
        assert found is not None
        return found


def kinds(bridge: Bridge, incident_id: int) -> list[str]:
    with bridge.database.transaction() as session:
        return list(
            session.scalars(
                select(TimelineEntry.kind)
                .where(TimelineEntry.incident_id == incident_id)
                .order_by(TimelineEntry.id)
            )
        )


def enrich_jobs(bridge: Bridge) -> list[SentryJob]:
    return [job for job in jobs(bridge) if job.kind == "enrich"]


def test_a_new_incident_is_answered_first_and_enriched_by_the_jobs_process(
    client: FlaskClient,
    bridge: Bridge,
    fake: FakeSentry,
    hook: MadeIntegration,
    connected: str,
    run_jobs: Callable[[], int],
) -> None:
    fake.requests.clear()

    answer = deliver(client, hook, "integration_issue_created")

    incident_id = answer["incident"]["id"]
    # Answered without calling Sentry; the job row was committed with the incident.
    assert fake.requests == []
    [job] = enrich_jobs(bridge)
    assert (job.status, job.incident_id, job.installation_uuid) == (
        "pending",
        incident_id,
        connected,
    )

    assert run_jobs() == 1

    enriched = incident(bridge, incident_id).enrichment
    assert enriched is not None
    assert enriched["event_count"] == 1284 and enriched["user_count"] == 311
    assert enriched["first_seen"] == "2026-11-23T08:12:44.120000Z"
    assert enriched["culprit"] == "app/checkout/cart.js in computeTotal"
    assert enriched["release"] == "checkout@2026.11.3"
    assert enriched["top_in_app_frame"]["function"] == "computeTotal"
    assert enriched["tags"]["environment"] == "production"
    assert enriched["permalink"] == "https://acme-gmbh.sentry.io/issues/4512345678/"
    # The payload's own facts stay; enrichment fills only what the issue webhook left out.
    found = incident(bridge, incident_id)
    assert found.culprit == "payments.service in charge_card"  # the payload's word
    assert found.sentry_count == 1284  # counts only grow: the later fetch is newer
    assert found.release == "checkout@2026.11.3" and found.environment == "production"
    assert kinds(bridge, incident_id)[-1] == "enriched"
    assert [j.status for j in enrich_jobs(bridge)] == ["done"]
    calls = [c.path for c in fake.requests]
    assert calls == [
        f"/api/0/organizations/{ORG}/issues/4512345678/",
        f"/api/0/organizations/{ORG}/issues/4512345678/events/latest/",
    ]


def test_a_repeated_event_does_not_queue_another_enrichment(
    client: FlaskClient, bridge: Bridge, hook: MadeIntegration, connected: str
) -> None:
    deliver(client, hook, "integration_issue_created")
    deliver(client, hook, "integration_issue_created")

    assert len(enrich_jobs(bridge)) == 1


def test_an_expired_token_is_refreshed_once_on_401_and_the_call_retried(
    client: FlaskClient,
    bridge: Bridge,
    fake: FakeSentry,
    hook: MadeIntegration,
    connected: str,
    run_jobs: Callable[[], int],
) -> None:
    incident_id = deliver(client, hook, "integration_issue_created")["incident"]["id"]
    fake.expire_all_tokens()

    assert run_jobs() == 1

    assert incident(bridge, incident_id).enrichment is not None
    refreshes = [
        c
        for c in fake.calls("POST", "/authorizations/$")
        if c.body["grant_type"] == "refresh_token"
    ]
    assert len(refreshes) == 1
    issue_calls = fake.calls("GET", ISSUE_PATH)
    assert [c.authorization != issue_calls[0].authorization for c in issue_calls] == [False, True]


def test_a_429_with_retry_after_is_waited_out_in_place(
    client: FlaskClient,
    bridge: Bridge,
    fake: FakeSentry,
    hook: MadeIntegration,
    connected: str,
    run_jobs: Callable[[], int],
    waits: list[float],
) -> None:
    incident_id = deliver(client, hook, "integration_issue_created")["incident"]["id"]
    fake.fail("GET", ISSUE_PATH, 429, headers={"Retry-After": "2"})

    assert run_jobs() == 1

    assert waits == [2.0]
    assert incident(bridge, incident_id).enrichment is not None


def test_a_long_rate_limit_reschedules_the_job_at_the_reset_time(
    client: FlaskClient,
    bridge: Bridge,
    fake: FakeSentry,
    hook: MadeIntegration,
    connected: str,
    run_jobs: Callable[[], int],
    waits: list[float],
) -> None:
    incident_id = deliver(client, hook, "integration_issue_created")["incident"]["id"]
    reset = time.time() + 600
    fake.fail("GET", ISSUE_PATH, 429, headers={"X-Sentry-Rate-Limit-Reset": f"{reset:.0f}"})

    assert run_jobs() == 0

    [job] = enrich_jobs(bridge)
    assert job.status == "pending" and job.attempts == 1
    assert job.run_after >= datetime.fromtimestamp(reset, UTC) - timedelta(seconds=5)
    assert waits == []  # not slept in place: beyond SENTRY_MAX_WAIT_SECONDS
    assert incident(bridge, incident_id).enrichment is None


def test_5xx_is_retried_with_backoff_within_one_run(
    client: FlaskClient,
    bridge: Bridge,
    fake: FakeSentry,
    hook: MadeIntegration,
    connected: str,
    run_jobs: Callable[[], int],
    waits: list[float],
) -> None:
    incident_id = deliver(client, hook, "integration_issue_created")["incident"]["id"]
    fake.fail("GET", ISSUE_PATH, 503, times=2)

    assert run_jobs() == 1

    assert waits == [0.5, 1.0]
    assert incident(bridge, incident_id).enrichment is not None


def test_a_failing_sentry_never_loses_the_incident_and_the_job_gives_up_in_the_end(
    client: FlaskClient,
    bridge: Bridge,
    fake: FakeSentry,
    hook: MadeIntegration,
    connected: str,
    run_jobs: Callable[[], int],
) -> None:
    incident_id = deliver(client, hook, "integration_issue_created")["incident"]["id"]
    fake.fail("GET", ISSUE_PATH, 500, times=100)
    statuses = []
    for _attempt in range(3):  # SENTRY_JOB_MAX_ATTEMPTS is 3 in these tests
        assert run_jobs() == 0
        [job] = enrich_jobs(bridge)
        statuses.append(job.status)
        assert job.last_error is not None and "500" in job.last_error
        with bridge.database.transaction() as session:  # skip the backoff wait
            session.execute(update(SentryJob).values(run_after=datetime.now(UTC)))

    assert statuses == ["pending", "pending", "failed"]
    kept = incident(bridge, incident_id)
    assert kept.status == "triggered" and kept.enrichment is None


def test_write_back_resolves_the_sentry_issue_and_its_echo_is_not_applied_twice(
    client: FlaskClient,
    bridge: Bridge,
    fake: FakeSentry,
    hook: MadeIntegration,
    connected: str,
    admin_person: Person,
    run_jobs: Callable[[], int],
) -> None:
    switched = client.post(
        f"{API}/write-back",
        json={"integration_id": hook.id, "enabled": True},
        headers=admin_person.headers,
    )
    assert switched.get_json()["data"]["write_back"] is True
    incident_id = deliver(client, hook, "integration_issue_created")["incident"]["id"]
    run_jobs()

    resolved = client.post(f"/api/incidents/{incident_id}/resolve", headers=admin_person.headers)
    assert resolved.status_code == 200, resolved.get_json()
    assert [j.kind for j in jobs(bridge) if j.status == "pending"] == ["write_back"]
    assert run_jobs() == 1

    assert fake.issues[(ORG, "4512345678")]["status"] == "resolved"
    [update_call] = fake.calls("PUT", ISSUE_PATH)
    assert update_call.body == {"status": "resolved"}
    entries_before = kinds(bridge, incident_id)

    echo = deliver(
        client,
        hook,
        "integration_issue_resolved",
        actor={"type": "application", "id": APP_UUID, "name": "Sentry Incident Bridge"},
    )

    assert echo["action"] == "ignored"
    assert "echo" in echo["reason"]
    assert kinds(bridge, incident_id) == entries_before


def test_acknowledging_ignores_the_sentry_issue_and_without_write_back_nothing_is_sent(
    client: FlaskClient,
    bridge: Bridge,
    fake: FakeSentry,
    hook: MadeIntegration,
    connected: str,
    admin_person: Person,
    run_jobs: Callable[[], int],
) -> None:
    incident_id = deliver(client, hook, "integration_issue_created")["incident"]["id"]
    run_jobs()
    client.post(f"/api/incidents/{incident_id}/acknowledge", headers=admin_person.headers)
    assert not [j for j in jobs(bridge) if j.kind == "write_back"]  # write-back is off

    client.post(
        f"{API}/write-back",
        json={"integration_id": hook.id, "enabled": True},
        headers=admin_person.headers,
    )
    client.post(f"/api/incidents/{incident_id}/resolve", headers=admin_person.headers)
    client.post(f"/api/incidents/{incident_id}/reopen", headers=admin_person.headers)
    client.post(f"/api/incidents/{incident_id}/acknowledge", headers=admin_person.headers)
    run_jobs()

    assert [c.body for c in fake.calls("PUT", ISSUE_PATH)] == [
        {"status": "resolved"},
        {"status": "ignored"},
    ]


def test_a_user_resolving_in_sentry_is_still_applied(
    client: FlaskClient, bridge: Bridge, hook: MadeIntegration, connected: str
) -> None:
    incident_id = deliver(client, hook, "integration_issue_created")["incident"]["id"]

    answer = deliver(client, hook, "integration_issue_resolved")

    assert answer["action"] == "resolved"
    assert incident(bridge, incident_id).status == "resolved"


def test_claimed_jobs_are_not_claimed_again_while_their_lease_runs(
    client: FlaskClient, bridge: Bridge, hook: MadeIntegration, connected: str
) -> None:
    deliver(client, hook, "integration_issue_created")
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        first = sentry_jobs.claim_due(session, now, 10, timedelta(minutes=5))
    with bridge.database.transaction() as session:
        second = sentry_jobs.claim_due(session, now, 10, timedelta(minutes=5))
    with bridge.database.transaction() as session:
        after_lease = sentry_jobs.claim_due(
            session, now + timedelta(minutes=6), 10, timedelta(minutes=5)
        )

    assert len(first) == 1 and second == []
    assert [job.attempts for job in after_lease] == [2]  # an abandoned claim is taken over


# SKIP LOCKED is PostgreSQL's; SQLite serialises writers at BEGIN, so only PostgreSQL runs it.
@pytest.mark.timing
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_concurrent_claimers_skip_each_others_locked_rows_on_postgresql(
    client: FlaskClient, bridge: Bridge, hook: MadeIntegration, connected: str
) -> None:
    assert bridge.database.is_postgresql
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        for _ in range(2):
            sentry_jobs.enqueue(session, sentry_jobs.JobKind.ENRICH, now)
    holding = threading.Event()
    release = threading.Event()
    claimed_by_first: list[int] = []

    def first_worker() -> None:
        with bridge.database.transaction() as session:
            claimed_by_first.extend(
                j.id for j in sentry_jobs.claim_due(session, now, 1, timedelta(minutes=5))
            )
            holding.set()
            release.wait(10)

    worker = threading.Thread(target=first_worker)
    worker.start()
    assert holding.wait(10)
    try:
        started = time.monotonic()
        with bridge.database.transaction() as session:
            session.execute(text("SET LOCAL lock_timeout = '3s'"))
            second = [j.id for j in sentry_jobs.claim_due(session, now, 10, timedelta(minutes=5))]
        waited = time.monotonic() - started
    finally:
        release.set()
        worker.join(10)

    assert len(claimed_by_first) == 1
    assert second and claimed_by_first[0] not in second
    assert waited < 2  # skipped the locked row instead of waiting for it


def test_the_jobs_process_schedules_the_outbox_and_the_token_refresh(bridge: Bridge) -> None:
    from app.jobs.scheduler import build_scheduler

    scheduler = build_scheduler(bridge)

    jobs_by_id = {job.id: job for job in scheduler.get_jobs()}
    assert {"prune_deliveries", "sentry_outbox", "sentry_token_refresh"} <= set(jobs_by_id)
    assert jobs_by_id["sentry_outbox"].trigger.interval == timedelta(
        seconds=bridge.settings.sentry_job_poll_seconds
    )
