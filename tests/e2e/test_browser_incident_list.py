"""The incident list in a real browser (Debian's Chromium under Playwright, gunicorn):
the Open tab and the on-fire order, bulk acknowledge from the keyboard, focus and text
selection surviving a live refresh, the session-expired and unreachable banners, and a
phone's first screen. One server for the module; each test has its own browser context.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.store.migrate import upgrade
from tests.support.payloads import build, load
from tests.support.ports import free_port
from tests.support.stack import BIN, ROOT, Stack, post, stop, wait_until_healthy

# Banners within 4 s of a 3 s refresh, a highlight that lasts; and the tests share one
# server's incidents in order, so they run together, on their own.
pytestmark = [pytest.mark.e2e, pytest.mark.timing]
PASSWORD = "correct horse battery staple"
EMAIL = "oncall@example.com"


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory, encryption_key: str) -> Iterator[Any]:
    """gunicorn on a fresh SQLite database with a service, an integration and a user."""
    home = tmp_path_factory.mktemp("incident_list")
    url = f"sqlite:///{home / 'bridge.db'}"
    upgrade(url)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "BRIDGE_INSTANCE_PATH": str(home / "instance"),
        "BRIDGE_ENCRYPTION_KEYS": encryption_key,
        "PORT": str(free_port()),
        "WEB_CONCURRENCY": "2",
        "LOG_LEVEL": "WARNING",
    }
    stack = Stack(env=env)
    stack.bridge_json("service", "create", "Payments")
    created = stack.bridge_json("integration", "create", "--service", "payments")
    done = subprocess.run(
        [str(BIN / "bridge"), "user", "create", EMAIL, "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    log_path = home / "gunicorn.log"
    stack.logs.append(log_path)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_healthy(stack.base_url, process)
            yield stack, created["webhook_url"]
        finally:
            stop(process)


def _shot(page: Any, name: str) -> None:
    directory = os.environ.get("SCREENSHOT_DIR")
    if directory:
        page.screenshot(path=str(Path(directory) / name), full_page=True)


def deliver(webhook_url: str, issue_id: str, title: str, level: str) -> int:
    _resource, payload = load("integration_issue_created")
    payload["data"]["issue"].update({"id": issue_id, "title": title, "level": level})
    delivery = build(payload, resource="issue")
    status, answer = post(webhook_url, delivery.body, delivery.headers)
    assert status == 202, answer
    incident_id: int = answer["incident"]["id"]
    return incident_id


def logged_in(browser: Any, base: str, **context_options: Any) -> Any:
    context = browser.new_context(**context_options)
    page = context.new_page()
    page.goto(f"{base}/login?next=%2Fincidents")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/incidents")
    return page


def titles(page: Any) -> list[str]:
    links = page.locator("tr[data-incident-id] .incident-link")
    return [" ".join(text.split()) for text in links.all_inner_texts()]


def test_open_tab_puts_triggered_critical_first_and_counts_them_in_the_title(
    listed: Any, browser: Any
) -> None:
    from playwright.sync_api import expect

    stack, webhook_url = listed
    for issue_id, title, level in (
        ("1", "Slow checkout", "warning"),
        ("2", "Database down", "fatal"),
        ("3", "Debug noise", "info"),
        ("4", "Card declined", "error"),
    ):
        deliver(webhook_url, issue_id, title, level)
    page = logged_in(browser, stack.base_url, viewport={"width": 1280, "height": 900})

    expect(page.get_by_role("link", name="Open", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    assert titles(page) == ["Database down", "Card declined", "Slow checkout", "Debug noise"]
    expect(page).to_have_title("(4) Incidents · Sentry Incident Bridge")
    _shot(page, "incident-list-open.png")

    # One row's own button: the acknowledged incident goes below the triggered ones.
    page.get_by_role("button", name="Acknowledge #2").click()
    expect(page.get_by_text("Acknowledged 1 incident: #2.")).to_be_visible()
    assert titles(page) == ["Card declined", "Slow checkout", "Debug noise", "Database down"]
    expect(page).to_have_title("(3) Incidents · Sentry Incident Bridge")

    # Severity is a sort of its own; the Triggered tab leaves the acknowledged one out.
    page.get_by_label("Sort").select_option("-severity")
    page.get_by_role("button", name="Apply").click()
    assert titles(page)[0] == "Database down"
    page.get_by_role("link", name="Triggered", exact=True).click()
    assert titles(page) == ["Card declined", "Slow checkout", "Debug noise"]
    page.context.close()


def test_bulk_acknowledge_from_the_keyboard(listed: Any, browser: Any) -> None:
    from playwright.sync_api import expect

    stack, _webhook_url = listed
    page = logged_in(browser, stack.base_url, viewport={"width": 1280, "height": 900})
    page.goto(f"{stack.base_url}/incidents?status=triggered")
    assert titles(page) == ["Card declined", "Slow checkout", "Debug noise"]

    # `?` lists the shortcuts; typing in the search field fires none of them.
    page.keyboard.press("?")
    expect(page.get_by_role("heading", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("heading", name="Keyboard shortcuts")).to_be_hidden()
    page.keyboard.press("/")
    search = page.get_by_label("Search title or source")
    expect(search).to_be_focused()
    page.keyboard.type("xa r")
    expect(search).to_have_value("xa r")
    assert page.url.endswith("/incidents?status=triggered")
    search.fill("")
    page.keyboard.press("Escape")

    # j j x (select the second), k x (select the first), a: both acknowledged at once.
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("x")
    page.keyboard.press("k")
    page.keyboard.press("x")
    expect(page.locator("#selected-count")).to_have_text("2 selected")
    page.keyboard.press("a")
    expect(page.get_by_text("Acknowledged 2 incidents:")).to_be_visible()
    assert titles(page) == ["Debug noise"]

    # Selecting the acknowledged ones again: refused with the single action's message.
    page.goto(f"{stack.base_url}/incidents?status=acknowledged&sort=-id")
    page.get_by_label("Select all incidents on this page").check()
    page.get_by_role("button", name="Acknowledge selected").click()
    expect(page.get_by_text("The incident is already acknowledged.").first).to_be_visible()
    page.context.close()


def test_focus_selection_and_checkboxes_survive_a_live_refresh(listed: Any, browser: Any) -> None:
    from playwright.sync_api import expect

    stack, webhook_url = listed
    page = logged_in(browser, stack.base_url, viewport={"width": 1280, "height": 520})
    page.goto(f"{stack.base_url}/incidents?status=all&sort=-id")
    rows = page.locator("tr[data-incident-id]")
    expect(rows).to_have_count(4)
    page.evaluate("window.__stillHere = true")

    # Tick the second row, focus the last row's link, select the first row's title.
    rows.nth(1).locator("input[name=ids]").check()
    last_link = rows.nth(3).locator(".incident-link")
    last_link.focus()
    page.evaluate(
        """() => {
        const text = document.querySelectorAll('tr[data-incident-id] .incident-link')[0];
        const range = document.createRange();
        range.selectNodeContents(text);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
    }"""
    )
    selected_text = page.evaluate("getSelection().toString()")
    assert selected_text == "Card declined"
    page.evaluate("window.scrollTo(0, 200)")
    focused_before = page.evaluate("document.activeElement.textContent")
    assert focused_before == "Slow checkout"
    top_before = last_link.bounding_box()["y"]

    new_id = deliver(webhook_url, "5", "Queue backlog growing", "fatal")

    fresh = page.locator(f'tr[data-incident-id="{new_id}"]')
    expect(fresh).to_have_count(1, timeout=10_000)
    expect(fresh).to_have_class("row-triggered new")
    assert page.evaluate("window.__stillHere") is True  # no reload
    assert page.evaluate("document.activeElement.textContent") == focused_before
    assert page.evaluate("getSelection().toString()") == selected_text
    assert rows.nth(2).locator("input[name=ids]").is_checked()  # the ticked row, one lower
    assert page.evaluate("window.scrollY") > 0
    assert abs(last_link.bounding_box()["y"] - top_before) < 2  # nothing jumped
    expect(page.locator("#incident-announcer")).to_have_text("New incident: Queue backlog growing.")
    expect(page.locator("#incident-rows")).not_to_have_attribute("aria-live", "polite")
    expect(page).to_have_title("(2) Incidents · Sentry Incident Bridge")
    _shot(page, "incident-list-new-row.png")

    # The highlight stays until the row is seen: here, hovered.
    page.wait_for_timeout(3500)
    expect(fresh).to_have_class("row-triggered new")
    fresh.hover()
    expect(fresh).to_have_class("row-triggered")

    # ... or on screen long enough in a visible tab (10 s; shortened here).
    page.mouse.move(5, 5)
    page.evaluate("window.scrollTo(0, 0); window.bridgeIncidentList.seenAfterMs = 1500")
    other = page.locator(f'tr[data-incident-id="{deliver(webhook_url, "6", "Disk", "error")}"]')
    expect(other).to_have_class("row-triggered new", timeout=10_000)
    expect(other).to_have_class("row-triggered", timeout=6_000)
    page.context.close()


def test_an_ended_session_or_an_unreachable_server_says_so(listed: Any, browser: Any) -> None:
    from playwright.sync_api import expect

    stack, _webhook_url = listed
    page = logged_in(browser, stack.base_url, viewport={"width": 1280, "height": 900})
    status = page.locator("#refresh-status")
    expect(status).to_contain_text("Updated")

    # The server cannot be reached (every refresh fails at the network).
    page.route("**/incidents/rows*", lambda route: route.abort())
    banner = page.get_by_role("alert")
    expect(banner).to_contain_text("The server cannot be reached", timeout=4_000)
    expect(status).to_contain_text("Not live: last updated")
    page.unroute("**/incidents/rows*")
    expect(banner).to_be_hidden(timeout=4_000)
    expect(status).not_to_contain_text("Not live")

    # The session ends (here: its cookie is gone): within one refresh the page says so.
    page.context.clear_cookies()
    expect(banner).to_contain_text("Your session has ended", timeout=4_000)
    expect(status).to_contain_text("Not live")
    _shot(page, "incident-list-session-ended.png")
    login = page.get_by_role("link", name="Log in again")
    expect(login).to_have_attribute("href", "/login?next=%2Fincidents")
    login.click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.context.close()


def test_a_phone_shows_incidents_first_and_folds_the_filters(listed: Any, browser: Any) -> None:
    from playwright.sync_api import expect

    stack, _webhook_url = listed
    page = logged_in(
        browser,
        stack.base_url,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    # The skip link is the first thing a keyboard reaches, and lands on the incidents.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to incidents")
    expect(skip).to_be_focused()
    skip.press("Enter")
    expect(page.locator("#incidents")).to_be_focused()

    page.evaluate("window.scrollTo(0, 0)")
    first = page.locator("tr[data-incident-id]").first
    box = first.bounding_box()
    assert box is not None and box["y"] + 40 < 844, box  # on the first screen
    toggle = page.get_by_role("button", name="Filters")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_label("Severity")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    _shot(page, "incident-list-phone.png")

    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_label("Severity")).to_be_visible()
    page.context.close()
