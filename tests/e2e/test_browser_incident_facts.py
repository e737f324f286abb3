"""The incident and what Sentry sent, in a real browser (Debian's Chromium, Playwright):
search by Sentry short id, and times in the reader's own time zone (issue 16)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.support.browser import create_user as _user
from tests.support.browser import log_in as _login
from tests.support.payloads import build, load, seen_at
from tests.support.stack import Stack, post

pytestmark = pytest.mark.e2e
TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_short_id_search_and_local_times_in_tokyo(server: Stack, browser: object) -> None:
    from playwright.sync_api import expect

    base = server.base_url
    server.bridge_json("service", "create", "Checkout")
    created = server.bridge_json("integration", "create", "--service", "checkout")
    event_epoch = int(time.time()) - 4 * 60  # Sentry saw it 4 minutes ago
    for issue_id, short_id, title in (
        ("4512300077", "CHECKOUT-77", "TypeError: cart is undefined"),
        ("4512300078", "CHECKOUT-78", "KeyError: currency"),
    ):
        _resource, payload = load("integration_issue_created")
        payload["data"]["issue"].update(id=issue_id, shortId=short_id, title=title)
        seen_at(payload, event_epoch)
        delivery = build(payload, resource="issue", timestamp=event_epoch)
        assert post(created["webhook_url"], delivery.body, delivery.headers)[0] == 202
    _user(server, "oncall@example.com")

    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1280, "height": 900}, timezone_id="Asia/Tokyo", locale="en-GB"
    )
    page = context.new_page()
    _login(page, base, "oncall@example.com")
    expect(page.locator("tr[data-incident-id]")).to_have_count(2)

    # Search by short id, in another case than Sentry writes it.
    page.get_by_label("Sentry short id").fill("checkout-77")
    page.get_by_role("button", name="Apply").click()
    rows = page.locator("tr[data-incident-id]")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("TypeError: cart is undefined")

    # The list's times: local (Tokyo, UTC+9) with a relative form; UTC in the attribute.
    last_event = rows.locator("time").first
    expect(last_event).to_have_attribute("data-localised", "")
    stamp = last_event.get_attribute("datetime") or ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp), stamp
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert moment == datetime.fromtimestamp(event_epoch, tz=UTC)
    local = moment.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M")
    expect(last_event).to_have_text(f"{local} (4 min ago)")
    title = last_event.get_attribute("title") or ""
    assert title.startswith(moment.strftime("%Y-%m-%d %H:%M:%S UTC")), title
    assert "Asia/Tokyo" in title

    # The incident page: triggered is when the bridge opened it (just now), the event's
    # own time is shown apart, and a refresh of the list keeps localising (new rows too).
    rows.locator("a").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("cart is undefined")
    facts = page.locator("article dl.facts")
    triggered = facts.locator("dt:text-is('Triggered') + dd time")
    event_time = facts.locator("dt:text-is('Event time') + dd time")
    expect(triggered).to_contain_text("(just now)")
    expect(event_time).to_have_text(f"{local} (4 min ago)")
    triggered_stamp = triggered.get_attribute("datetime") or ""
    triggered_at = datetime.fromisoformat(triggered_stamp.replace("Z", "+00:00"))
    expect(triggered).to_have_text(f"{triggered_at.astimezone(TOKYO):%Y-%m-%d %H:%M} (just now)")
    expect(page.locator("section", has_text="What Sentry sent")).to_contain_text("CHECKOUT-77")
    context.close()
