"""A person in a real browser: Debian's Chromium driven by Playwright, against gunicorn.

Log in, watch a delivered incident appear without a reload, acknowledge, note, resolve,
filter, rotate a secret, send a test alert, replay a delivery, and use a phone-width
screen. Set SCREENSHOT_DIR to keep the README's screenshots.
"""

from __future__ import annotations

import pytest

from tests.support.browser import create_user, log_in, screenshot
from tests.support.pages import PASSWORD
from tests.support.payloads import build, issue_event, load
from tests.support.stack import Stack, post

pytestmark = pytest.mark.e2e


# The browser checks the pages, not the database: the embedded default is enough here.
@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_on_call_engineer_works_an_incident_in_a_real_browser(
    server: Stack, browser: object
) -> None:
    from playwright.sync_api import expect

    base = server.base_url
    create_user(server, "admin@example.com", "--admin")
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()

    # A wrong password is refused plainly; the right one lands on the incident list.
    page.goto(f"{base}/incidents")
    expect(page).to_have_url(f"{base}/login?next=%2Fincidents")
    page.get_by_label("Email").fill("admin@example.com")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Wrong email or password.")).to_be_visible()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Incidents")).to_be_visible()

    # Admin: a service and an integration with a generated secret, shown once.
    page.get_by_role("link", name="Services").click()
    page.get_by_label("Service name").fill("Payments")
    page.get_by_role("button", name="Create service").click()
    expect(page.get_by_text("Service Payments created.")).to_be_visible()
    page.get_by_role("link", name="Integrations").click()
    page.get_by_label("Integration name").fill("Sentry production")
    page.get_by_label("Generate one").check()
    page.get_by_role("button", name="Create integration").click()
    expect(page.get_by_role("heading", name="Integration created")).to_be_visible()
    webhook_url = page.locator("#webhook-url").input_value()
    secret = page.locator("#secret").input_value()
    assert webhook_url.startswith(f"{base}/api/integrations/sentry?integrationId=")
    assert len(secret) == 64

    # The list updates itself when a delivery arrives: no reload, filters kept.
    page.goto(f"{base}/incidents?status=triggered&sort=-id")
    expect(page.get_by_text("All quiet.")).to_be_visible()
    page.evaluate("window.__stillHere = true")
    delivery = build("integration_issue_created", secret=secret)
    status, _answer = post(webhook_url, delivery.body, delivery.headers)
    assert status == 202
    row = page.locator("tr[data-incident-id]")
    expect(row).to_have_count(1, timeout=10_000)
    expect(row).to_contain_text("ZahlungFehler")
    expect(row.locator(".badge.st-triggered")).to_have_text("triggered")
    expect(row.locator(".badge.sev-error")).to_contain_text("error")
    assert page.evaluate("window.__stillHere") is True
    assert page.url.endswith("/incidents?status=triggered&sort=-id")
    screenshot(page, "incident-list.png")

    # Filters: severity and text search narrow the list; the tab stays.
    page.get_by_label("Severity").select_option("warning")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("tr[data-incident-id]")).to_have_count(0)
    page.get_by_label("Severity").select_option("")
    page.get_by_label("Search title or source").fill("Payments API")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("tr[data-incident-id]")).to_have_count(1)
    assert "status=triggered" in page.url

    # The incident page: acknowledge, note, resolve.
    page.locator("tr[data-incident-id] a").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("ZahlungFehler")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".badges .st-acknowledged")).to_have_text("acknowledged")
    page.get_by_label("Add a note").fill("Rolled back payments-api 2.14.1")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("ol.timeline")).to_contain_text("Rolled back payments-api 2.14.1")
    expect(page.locator("ol.timeline")).to_contain_text("admin@example.com")
    screenshot(page, "incident-detail.png")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator(".badges .st-resolved")).to_have_text("resolved")
    page.goto(f"{base}/incidents?status=resolved")
    expect(page.locator("tr[data-incident-id]")).to_have_count(1)

    # Rotate the secret: the new one is shown once; the old one works during the grace.
    page.get_by_role("link", name="Integrations").click()
    page.get_by_role("button", name="Rotate secret of Sentry production").click()
    expect(page.get_by_role("heading", name="Secret rotated")).to_contain_text("Secret rotated")
    new_secret = page.locator("#secret").input_value()
    assert new_secret != secret
    for number, signing in enumerate((secret, new_secret), start=1):
        again = issue_event(number, secret=signing)
        assert post(webhook_url, again.body, again.headers)[0] == 202

    # The test alert goes through the real endpoint, signed with the current secret.
    page.get_by_role("link", name="Back to integrations").click()
    page.get_by_role("button", name="Send test alert through Sentry production").click()
    expect(page.get_by_text("Test alert accepted (202)")).to_be_visible()

    # The delivery inspector shows a delivery and replays it.
    page.get_by_role("link", name="Deliveries", exact=True).click()
    page.locator("table a").first.click()
    expect(page.get_by_role("heading", name="Delivery")).to_be_visible()
    page.get_by_role("button", name="Replay this delivery").click()
    expect(page.get_by_text("Replayed as delivery")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("admin@example.com")

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.goto(f"{base}/incidents")
    expect(page).to_have_url(f"{base}/login?next=%2Fincidents")
    context.close()


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_phone_width_and_responder_limits(server: Stack, browser: object) -> None:
    from playwright.sync_api import expect

    base = server.base_url
    server.bridge_json("service", "create", "Payments")
    created = server.bridge_json("integration", "create", "--service", "payments")
    _resource, payload = load("integration_issue_created")
    payload["data"]["issue"]["level"] = "fatal"
    delivery = build(payload, resource="issue")
    assert post(created["webhook_url"], delivery.body, delivery.headers)[0] == 202
    create_user(server, "oncall@example.com")

    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    log_in(page, base, "oncall@example.com")
    row = page.locator("tr[data-incident-id]")
    expect(row).to_have_count(1)
    expect(row.locator(".badge.sev-critical")).to_contain_text("critical")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    row.locator("a").first.click()
    for name in ("Acknowledge", "Resolve", "Add note"):
        expect(page.get_by_role("button", name=name)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    screenshot(page, "incident-detail-phone.png")

    expect(page.get_by_role("link", name="Integrations")).to_have_count(0)
    response = page.goto(f"{base}/admin/integrations")
    assert response is not None and response.status == 403
    expect(page.get_by_text("This page needs the admin role.")).to_be_visible()
    context.close()
