"""On-call in a real browser (Debian's Chromium through Playwright, against gunicorn): an
admin creates a schedule and an escalation policy on the schedules page and reads who is
on call now; on their contact-methods page they ask for a test message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.browser import create_user
from tests.support.pages import PASSWORD
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_admin_creates_a_schedule_and_a_policy_and_reads_who_is_on_call_now(
    server: Stack, browser: object
) -> None:
    from playwright.sync_api import expect

    base = server.base_url
    create_user(server, "admin@example.com", "--admin")
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()  # type: ignore[attr-defined]
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill("admin@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Incidents")).to_be_visible()

    page.get_by_role("link", name="Schedules").click()
    expect(page.get_by_text("No schedules yet.")).to_be_visible()
    page.get_by_label("Schedule name").fill("primary")
    page.get_by_label("Time zone").fill("UTC")
    page.get_by_label("Rotation").select_option("daily")
    page.get_by_label("Handoff").fill("00:00")
    page.get_by_label("Members").fill("admin@example.com")
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    page.locator("input[name=start]").fill(two_days_ago)
    page.get_by_role("button", name="Create schedule").click()
    expect(page.get_by_text("Schedule primary created.")).to_be_visible()
    card = page.locator("section.schedule", has_text="primary")
    expect(card.locator(".on-call-now")).to_contain_text("On call now: admin@example.com")

    page.get_by_label("Policy name").fill("default")
    page.get_by_label("Steps").fill("0:schedule:primary\n15:user:admin@example.com")
    page.get_by_role("button", name="Create policy").click()
    expect(page.get_by_text("Escalation policy default created.")).to_be_visible()
    expect(page.get_by_text("0:schedule:primary → 15:user:admin@example.com")).to_be_visible()

    # "Send me a test" on the person's own contact-methods page.
    page.get_by_role("link", name="Contact methods").click()
    method = page.locator("tr.contact-method", has_text="admin@example.com")
    expect(method).to_contain_text("not yet: send a test")
    method.get_by_role("button", name="Send me a test").click()
    expect(page.get_by_text("Test queued to admin@example.com.")).to_be_visible()
