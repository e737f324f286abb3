"""Paging on the real server: gunicorn and `bridge jobs run` (its own process), the aiosmtpd
fake at BRIDGE_SMTP_URL. A Sentry delivery pages the person on call by email within 2 s;
without an acknowledgement the next step's person is paged at its delay; acknowledging
through the email's link stops the rest.

Step delays are minutes; BRIDGE_ESCALATION_MINUTE_SECONDS=2 makes a minute last 2 s here
so the delays can be waited for (docs/on-call.md). SQLite only, to keep the wall time
short: the PostgreSQL paths (SKIP LOCKED claims, LISTEN wake-ups) are covered by
tests/integration/test_oncall_paging.py.
"""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.domain.schedule import ShiftUnit
from app.extensions import Bridge
from app.services import catalog, escalation_policies, schedules
from config.settings import load_settings
from tests.fakes.fixtures import smtp_server  # noqa: F401
from tests.fakes.smtp import FakeSmtpServer, ReceivedMail
from tests.support.oncall import make_people
from tests.support.payloads import build, load
from tests.support.stack import BIN, ROOT, Stack, post, stop, wait_until_healthy

# The first page within 2 s, the next step at its (2 s) minute's delay.
pytestmark = [pytest.mark.e2e, pytest.mark.timing]
MINUTE_SECONDS = 2
PEOPLE = ("oncall@example.com", "lead@example.com", "boss@example.com")
ACK_LINK = re.compile(r"https?://\S+/ack/[A-Za-z0-9_.-]+")


@pytest.fixture
def paging_stack(
    stack: Stack,
    smtp_server: FakeSmtpServer,  # noqa: F811
    tmp_path: Path,
) -> Iterator[Stack]:
    """gunicorn and the jobs process, sending email to the fake SMTP server."""
    stack.env.update(
        BRIDGE_SMTP_URL=smtp_server.url(),
        BRIDGE_SMTP_FROM="bridge@example.com",
        BRIDGE_PUBLIC_URL=stack.base_url,
        BRIDGE_ESCALATION_MINUTE_SECONDS=str(MINUTE_SECONDS),
        BRIDGE_ESCALATION_POLL_MS="250",
    )
    log_path = tmp_path / "servers.log"
    stack.logs.append(log_path)
    with log_path.open("wb") as log:
        web = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=stack.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        jobs = subprocess.Popen(
            [str(BIN / "bridge"), "jobs", "run"],
            cwd=ROOT,
            env=stack.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_healthy(stack.base_url, web)
            yield stack
        finally:
            stop(web)
            stop(jobs)


def _set_up(stack: Stack) -> str:
    """People with verified account emails, a schedule, a three-step policy; the webhook URL.

    Written in-process through the services (the CLI's own tests cover the commands):
    sixteen `bridge` processes would cost half a minute on their own.
    """
    bridge = Bridge(load_settings(stack.env))
    now = datetime.now(UTC)
    try:
        with bridge.database.transaction() as session:
            make_people(session, now, *PEOPLE)
            spec = schedules.LayerSpec(
                [PEOPLE[0]], 1, ShiftUnit.DAYS, "00:00", now - timedelta(days=2)
            )
            schedules.create_schedule(session, bridge.secrets, "primary", "UTC", spec, now)
            steps = ["0:schedule:primary", f"1:user:{PEOPLE[1]}", f"2:user:{PEOPLE[2]}"]
            policy = escalation_policies.create_policy(session, "default", steps, now, 0, None)
            service = catalog.create_service(session, "Payments", now)
            escalation_policies.update_service_paging(session, service, policy)
            created = catalog.create_integration(
                session, bridge.secrets, service, now, secret="s3cr3t"
            )
            integration_id = created.integration.id
    finally:
        bridge.database.dispose()
    return f"{stack.base_url}/api/integrations/sentry?integrationId={integration_id}"


def _mail_to(server: FakeSmtpServer, address: str) -> list[ReceivedMail]:
    return [mail for mail in server.messages if address in mail.rcpt_tos]


def _wait_for_mail(server: FakeSmtpServer, address: str, limit: float) -> float:
    started = time.monotonic()
    while not _mail_to(server, address):
        if time.monotonic() - started > limit:
            raise AssertionError(f"no email to {address} within {limit} s")
        time.sleep(0.02)
    return time.monotonic() - started


def _text(mail: ReceivedMail) -> str:
    part = mail.message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_a_delivery_pages_on_call_then_the_next_step_and_the_link_stops_the_rest(
    paging_stack: Stack,
    smtp_server: FakeSmtpServer,  # noqa: F811
) -> None:
    url = _set_up(paging_stack)
    _resource, payload = load("integration_issue_created")
    payload["data"]["issue"]["level"] = "error"
    delivery = build(payload, resource="issue", secret="s3cr3t")

    sent_at = time.monotonic()
    status, answer = post(url, delivery.body, delivery.headers)
    assert status == 202 and answer["action"] == "triggered"

    first = _wait_for_mail(smtp_server, PEOPLE[0], limit=2.0)
    assert first < 2.0
    assert _mail_to(smtp_server, PEOPLE[1]) == []  # the lead waits for the step's delay
    # Step 2 is due one (2 s) minute after step 1.
    _wait_for_mail(smtp_server, PEOPLE[1], limit=6.0)
    second = time.monotonic() - sent_at
    assert MINUTE_SECONDS - 0.5 <= second <= MINUTE_SECONDS + 2.5, second

    links = ACK_LINK.findall(_text(_mail_to(smtp_server, PEOPLE[1])[0]))
    assert links, "the page carries the acknowledge link"
    with urllib.request.urlopen(links[0], timeout=10) as page:  # noqa: S310
        assert page.status == 200  # the confirmation page: opening it changes nothing
    request = urllib.request.Request(links[0], data=b"", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as acknowledged:  # noqa: S310
        assert acknowledged.status == 200

    # Step 3 would have been due two minutes (4 s) after step 2: wait past it.
    time.sleep(max(0.0, sent_at + 3 * MINUTE_SECONDS + 2.0 - time.monotonic()))
    assert _mail_to(smtp_server, PEOPLE[2]) == []
    incidents = paging_stack.bridge_json("incident", "list", "--json")
    assert incidents[0]["status"] == "acknowledged"
    # The on-call person got one page by email (the schedule's step), not one per poll.
    assert len(_mail_to(smtp_server, PEOPLE[0])) == 1
    subject = str(_mail_to(smtp_server, PEOPLE[0])[0].message["Subject"])
    assert "Payments" in subject
