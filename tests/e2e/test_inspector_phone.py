"""The delivery inspector on a 390 px phone: labels above values, nothing overlapping or
broken mid-word, room for the replay button; the list names integration and service."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tests.support.payloads import build
from tests.support.stack import BIN, ROOT, Stack, post

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"

# Every <dt>/<dd> box of the facts, and each label's height against its line height.
_BOXES = """() => [...document.querySelectorAll('dl.delivery-facts > dt, dl.delivery-facts > dd')]
  .map(e => { const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
    return {tag: e.tagName, text: e.textContent.trim(), top: r.top, bottom: r.bottom,
            left: r.left, right: r.right, line: parseFloat(s.lineHeight)}; })"""


def overlaps(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (
        a["left"] < b["right"] - 0.5
        and b["left"] < a["right"] - 0.5
        and a["top"] < b["bottom"] - 0.5
        and b["top"] < a["bottom"] - 0.5
    )


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_delivery_detail_reads_well_at_390_px(server: Stack, browser: Any) -> None:
    from playwright.sync_api import expect

    base = server.base_url
    server.bridge_json("service", "create", "Payments")
    created = server.bridge_json("integration", "create", "--service", "payments", "--name", "Prod")
    delivery = build("integration_issue_created")
    status, answer = post(created["webhook_url"], delivery.body, delivery.headers)
    assert status == 202
    subprocess.run(
        [str(BIN / "bridge"), "user", "create", "admin@example.com", "--admin", "--password-stdin"],
        input=PASSWORD + "\n", env=server.env, cwd=ROOT, check=True, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip

    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill("admin@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.goto(f"{base}/admin/deliveries")
    cell = page.locator('td[data-label="Integration"]').first
    expect(cell).to_contain_text("Prod")
    expect(cell).to_contain_text("Payments")

    page.goto(f"{base}/admin/deliveries/{answer['delivery_id']}")
    boxes = page.evaluate(_BOXES)
    labels = [box for box in boxes if box["tag"] == "DT"]
    values = [box for box in boxes if box["tag"] == "DD"]
    assert len(labels) == len(values) >= 10
    for label, value in zip(labels, values, strict=True):
        assert label["bottom"] <= value["top"] + 0.5, f"{label['text']} is not above its value"
        # One line: a label like "Sentry-Hook-Timestamp" is never broken mid-word.
        assert label["bottom"] - label["top"] < 1.5 * label["line"], label["text"]
    for index, box in enumerate(boxes):
        for other in boxes[index + 1 :]:
            assert not overlaps(box, other), (box["text"], other["text"])
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0

    replay = page.get_by_role("button", name="Replay this delivery")
    expect(replay).to_be_visible()
    button = replay.bounding_box()
    assert button is not None and button["width"] >= 300 and button["height"] >= 38
    body = page.locator("pre.body").bounding_box()
    assert body is not None and body["y"] >= button["y"] + button["height"] + 8
    context.close()
