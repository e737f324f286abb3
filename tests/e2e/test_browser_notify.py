"""Paging people in a real browser: Debian's Chromium driven by Playwright, against
gunicorn and the jobs process, with the recording webhook receiver on loopback.

Create a channel on the admin page and send it a test, silence an incident from its
page, and acknowledge through the link of the message the receiver got.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.notify_support import (
    NOTIFY_ENV,
    deliver,
    jobs_running,
    quiet_for,
    setup_service,
    sql,
)
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support.browser import create_user, log_in, screenshot
from tests.support.payloads import build, load
from tests.support.stack import Stack, post

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def notify_env(stack: Stack) -> Iterator[None]:
    stack.env.update(NOTIFY_ENV, BRIDGE_PUBLIC_URL=stack.base_url)
    yield


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_admin_pages_a_channel_silences_an_issue_and_acknowledges_from_the_message(
    server: Stack, browser: object, webhook_receiver: WebhookReceiver
) -> None:
    from playwright.sync_api import expect

    base = server.base_url
    made = setup_service(server)
    create_user(server, "admin@example.com", "--admin")
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    log_in(page, base, "admin@example.com")

    with jobs_running(server):
        # A webhook channel from the admin page; its signing secret is shown once.
        page.get_by_role("link", name="Channels").click()
        expect(page.get_by_role("heading", name="Notification channels")).to_be_visible()
        page.get_by_label("Kind").select_option("webhook")
        page.get_by_label("Channel name").fill("ops-hook")
        page.get_by_label("URL (webhook, Slack, Apprise)").fill(webhook_receiver.url())
        page.get_by_label("Sign webhooks (secret shown once)").check()
        page.get_by_role("button", name="Create channel").click()
        expect(page.get_by_role("heading", name="Channel ops-hook created")).to_be_visible()
        assert page.locator("#secret").input_value().startswith("whsec_")
        page.get_by_role("link", name="Back to channels").click()
        row = page.locator("tr", has_text="ops-hook")
        expect(row).to_contain_text("webhook")
        expect(row).not_to_contain_text(str(webhook_receiver.port))  # the target is masked
        screenshot(page, "channels.png")

        # "Send test" queues a test; the jobs process sends it to the receiver.
        row.get_by_role("button", name="Send test").click()
        expect(page.get_by_text("Test notification queued for ops-hook.")).to_be_visible()
        assert webhook_receiver.wait_for(1)[0].json()["type"] == "test"

        # Two incidents from Sentry, each announced once.
        first = deliver(made.url, made.sentry_secret, 1)["incident"]["id"]
        second = deliver(made.url, made.sentry_secret, 2)["incident"]["id"]
        announced = {r.json()["incident"]["id"]: r.json() for r in webhook_receiver.wait_for(3)[1:]}
        assert set(announced) == {first, second}

        # Silence the second one's issue from its page; its severity rise is then held.
        page.goto(f"{base}/incidents/{second}")
        page.get_by_role("button", name="Silence this issue for 1 h").click()
        expect(
            page.get_by_text("Notifications for this issue are silenced for 1 h.")
        ).to_be_visible()
        _resource, payload = load("integration_issue_created")
        payload["data"]["issue"].update(
            id=str(4_800_000_002), level="fatal", title="TypeError: cart 2 is undefined",
            lastSeen="2026-11-23T09:30:00.000000+00:00",
        )  # fmt: skip
        raised = build(payload, resource="issue", secret=made.sentry_secret)
        assert post(made.url, raised.body, raised.headers)[0] == 202
        quiet_for(1.0)
        assert len(webhook_receiver.requests) == 3  # nothing new: held
        held = sql(server, "SELECT type FROM notifications WHERE status = 'held'")
        assert [row[0] for row in held] == ["incident.severity_raised"]

        # Acknowledge the first through the link in the message the receiver got.
        page.goto(announced[first]["ack_url"])
        expect(page.get_by_role("heading", name=f"Acknowledge incident #{first}")).to_be_visible()
        assert sql(server, "SELECT status FROM incidents WHERE id = :id", id=first)[0][0] == (
            "triggered"  # opening the link changes nothing
        )
        screenshot(page, "ack-link.png")
        page.get_by_role("button", name="Acknowledge (link sent to ops-hook)").click()
        expect(page.get_by_text("This link has been used.")).to_be_visible()

    page.goto(f"{base}/incidents/{first}")
    expect(page.locator(".badges .st-acknowledged")).to_have_text("acknowledged")
    expect(page.locator("ol.timeline")).to_contain_text("via notification link to ops-hook")
    context.close()
