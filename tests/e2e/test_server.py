"""The real gunicorn server and the `bridge` CLI on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import threading
import urllib.error
import urllib.request
import uuid

import pytest

from tests.support.payloads import build, issue_event
from tests.support.stack import BIN, ROOT, Stack, drain_spool, post

pytestmark = pytest.mark.e2e


def _setup(server: Stack, *secret_args: str) -> dict[str, str]:
    server.bridge_json("service", "create", "Payments", "--reopen-window-minutes", "15")
    created: dict[str, str] = server.bridge_json(
        "integration", "create", "--service", "payments", *secret_args
    )
    return created


def test_cli_created_integration_receives_signed_sentry_deliveries(server: Stack) -> None:
    created = _setup(server, "--generate-secret")
    assert created["webhook_url"].endswith(
        f"/api/integrations/sentry?integrationId={created['id']}"
    )
    assert len(created["id"]) >= 22  # at least 128 bits, URL-safe
    secret = created["secret"]
    url = f"{server.base_url}/api/integrations/sentry?integrationId={created['id']}"

    signed = build("integration_issue_created", secret=secret)
    status, answer = post(url, signed.body, signed.headers)
    assert (status, answer["action"]) == (202, "triggered")

    unsigned = build("integration_issue_created")
    status, answer = post(url, unsigned.body, unsigned.headers)
    assert status == 401
    assert answer["error"]["code"] == "signature_missing"

    listed = server.bridge_json("incident", "list", "--service", "payments", "--json")
    assert len(listed) == 1
    incident = listed[0]
    assert incident["dedup_key"] == "sentry-4512345678"
    assert incident["status"] == "triggered"
    assert incident["service"] == "Payments"
    assert incident["event_count"] == 1
    assert incident["reopen_count"] == 0
    assert incident["severity"] == "error"
    assert incident["source"] == "Sentry - Payments API"
    assert incident["title"].startswith("ZahlungFehler")


def test_rotated_secret_keeps_the_old_one_valid_and_disable_refuses(server: Stack) -> None:
    created = _setup(server, "--secret", "pasted-client-secret")
    assert "secret" not in created  # a secret the user gave is never printed back
    url = f"{server.base_url}/api/integrations/sentry?integrationId={created['id']}"

    rotated = server.bridge_json("integration", "rotate-secret", created["id"])
    assert rotated["secret"] != "pasted-client-secret"
    for number, secret in enumerate(("pasted-client-secret", rotated["secret"])):
        delivery = issue_event(number, secret=secret)
        assert post(url, delivery.body, delivery.headers)[0] == 202

    server.bridge_json("integration", "disable", created["id"])
    delivery = build("integration_issue_created", secret=rotated["secret"])
    status, answer = post(url, delivery.body, delivery.headers)
    assert status == 403
    assert answer["error"]["code"] == "integration_disabled"

    assert server.bridge_json("incident", "list", "--json")[0]["event_count"] == 2


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_cli_in_another_shell_prints_the_url_the_server_answers_on(server: Stack) -> None:
    """A newcomer runs `PORT=<port> make run` in one terminal, the CLI in another one."""
    server.bridge_json("service", "create", "Payments")
    other_shell = {
        key: value
        for key, value in server.env.items()
        if key not in {"PORT", "HOST", "BRIDGE_PUBLIC_URL"}
    }

    done = subprocess.run(
        [str(BIN / "bridge"), "integration", "create", "--service", "payments"],
        env=other_shell,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    created = json.loads(done.stdout)
    assert created["webhook_url"].startswith(f"{server.base_url}/api/integrations/sentry?")
    assert server.env["PORT"] != "8000"
    assert "loopback address" in done.stderr and "BRIDGE_PUBLIC_URL" in done.stderr
    delivery = build("integration_issue_created")
    assert post(created["webhook_url"], delivery.body, delivery.headers)[0] == 202


def test_cli_reports_unknown_names_plainly(stack: Stack) -> None:
    done = stack.bridge("integration", "create", "--service", "nope", check=False)

    assert done.returncode == 1
    assert "No service named 'nope'; services: " in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.usefixtures("four_workers", "patient_sender")
def test_fifty_simultaneous_deliveries_of_one_new_issue_make_one_incident(server: Stack) -> None:
    created = _setup(server, "--secret", "s3cr3t")
    url = f"{server.base_url}/api/integrations/sentry?integrationId={created['id']}"
    deliveries = [issue_event(n, secret="s3cr3t", request_id=uuid.uuid4().hex) for n in range(50)]
    barrier = threading.Barrier(len(deliveries))
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def send(index: int) -> None:
        barrier.wait(timeout=30)
        status, answer = post(url, deliveries[index].body, deliveries[index].headers)
        with lock:
            results.append((status, answer.get("action", answer.get("error", {}).get("code"))))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(deliveries))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(results) == 50
    assert {status for status, _ in results} == {202}
    actions = sorted(action for _, action in results)
    assert actions.count("triggered") == 1
    # A delivery that waits on the incident's row lock past the webhook's deadline
    # (BRIDGE_DB_DELIVERY_TIMEOUT_MS) is kept in the spool and answered at once; the jobs
    # process applies it. On a loaded 2-core machine a few of the fifty may wait that long.
    spooled = actions.count("spooled")
    assert actions.count("deduplicated") + spooled == 49
    if spooled:
        drain_spool(server)
    listed = server.bridge_json("incident", "list", "--json")
    assert len(listed) == 1
    assert listed[0]["event_count"] == 50


def test_logs_never_carry_the_secret_or_the_integration_id(server: Stack) -> None:
    created = _setup(server, "--secret", "very-secret-client-secret")
    url = f"{server.base_url}/api/integrations/sentry?integrationId={created['id']}"
    good = build("integration_issue_created", secret="very-secret-client-secret")
    bad = build("integration_issue_created", secret="wrong")
    post(url, good.body, good.headers)
    post(url, bad.body, bad.headers)
    post(
        f"{server.base_url}/api/integrations/sentry?integrationId=unknown", good.body, good.headers
    )

    logs = server.log_text()
    assert "POST /api/integrations/sentry" in logs  # the access log is there...
    assert created["id"] not in logs  # ...without the credential in the query string
    assert "very-secret-client-secret" not in logs
    assert good.headers["Sentry-Hook-Signature"] not in logs


def test_cli_made_token_works_the_incidents_api_over_http(server: Stack) -> None:

    created = _setup(server)
    url = f"{server.base_url}/api/integrations/sentry?integrationId={created['id']}"
    delivery = build("integration_issue_created")
    incident_id = post(url, delivery.body, delivery.headers)[1]["incident"]["id"]
    user = server.bridge_json("user", "create", "oncall@example.com")
    assert user["role"] == "responder"
    assert len(user["password"]) >= 12
    token = server.bridge_json("token", "create", "oncall@example.com")["token"]
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    status, acknowledged = post(
        f"{server.base_url}/api/incidents/{incident_id}/acknowledge", b"{}", auth
    )
    request = urllib.request.Request(  # noqa: S310
        f"{server.base_url}/api/incidents?status=acknowledged", headers=auth
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        listed = json.loads(response.read())
    status_without, _ = post(f"{server.base_url}/api/incidents/{incident_id}/resolve", b"{}", {})

    assert (status, acknowledged["status"]) == (200, "acknowledged")
    assert [item["id"] for item in listed["items"]] == [incident_id]
    assert status_without == 401
    assert token not in server.log_text()


@pytest.mark.usefixtures("four_workers")
def test_metrics_sum_every_worker_and_access_logs_are_json(server: Stack) -> None:
    import re

    created = _setup(server)
    url = f"{server.base_url}/api/integrations/sentry?integrationId={created['id']}"
    for _ in range(12):
        delivery = build("integration_issue_created")
        assert post(url, delivery.body, {**delivery.headers, "X-Request-ID": "e2e-req"})[0] == 202

    with urllib.request.urlopen(f"{server.base_url}/metrics", timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    counts = {
        outcome: float(value)
        for outcome, value in re.findall(
            r'^bridge_deliveries_total\{outcome="(\w+)"\} ([0-9.]+)$', text, re.M
        )
    }

    # Four workers served these; the multiprocess registry adds them all up.
    assert counts.get("triggered", 0) + counts.get("deduplicated", 0) == 12
    assert "bridge_ingest_seconds_bucket" in text
    assert 'bridge_job_lag_seconds{queue="spool"}' in text
    access = [
        json.loads(line)
        for line in server.log_text().splitlines()
        if line.startswith("{") and '"gunicorn.access"' in line
    ]
    webhook_lines = [line for line in access if line["request"] == "POST /api/integrations/sentry"]
    assert len(webhook_lines) == 12
    assert {line["request_id"] for line in webhook_lines} == {"e2e-req"}
    assert all(line["status"] == 202 for line in webhook_lines)
