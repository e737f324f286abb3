"""The incident list page: Open by default, on fire first, bulk and row actions (CSRF),
the title's triggered count, the skip link and the rows fragment for the live refresh."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import Bridge
from app.store.models import Incident, TimelineEntry
from tests.support.api import trigger
from tests.support.integrations import MadeIntegration
from tests.support.pages import csrf_token, log_in

pytestmark = pytest.mark.usefixtures("people")
ROW_ID = re.compile(r'<tr data-incident-id="(\d+)"')


@pytest.fixture
def four(
    client: FlaskClient, bridge: Bridge, make_integration: Callable[..., MadeIntegration]
) -> dict[str, int]:
    """warning, fatal, info, error (in that order); the fatal one acknowledged, the info
    one resolved."""
    integration = make_integration()
    ids = {
        issue: trigger(client, integration, issue, f"Problem {issue}", level)["incident"]["id"]
        for issue, level in (("w", "warning"), ("f", "fatal"), ("i", "info"), ("e", "error"))
    }
    log_in(client, "oncall@example.com")
    token = csrf_token(client, "/incidents")
    for issue, action in (("f", "acknowledge"), ("i", "resolve")):
        done = client.post(f"/incidents/{ids[issue]}/{action}", data={"csrf_token": token})
        assert done.status_code == 302
    return ids


def _rows(page: str) -> list[int]:
    return [int(found) for found in ROW_ID.findall(page)]


def _status(bridge: Bridge, incident_id: int) -> str:
    with bridge.database.reading() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        return incident.status


def test_default_view_is_open_on_fire_first_with_the_triggered_count_in_the_title(
    client: FlaskClient, four: dict[str, int]
) -> None:
    page = client.get("/incidents").get_data(as_text=True)

    # Triggered error, triggered warning, then the acknowledged critical; not the resolved.
    assert _rows(page) == [four["e"], four["w"], four["f"]]
    assert 'aria-current="page" class="active">Open<' in page
    assert "<title>(2) Incidents · Sentry Incident Bridge</title>" in page
    assert '<option value="urgency" selected>On fire first</option>' in page
    assert '<a class="skip-link" href="#incidents">Skip to incidents</a>' in page
    assert 'id="incidents" tabindex="-1"' in page
    assert 'aria-controls="filters"' in page and 'aria-expanded="false"' in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=all", ["e", "w", "f", "i"]),
        ("status=all&sort=-severity", ["f", "e", "w", "i"]),
        ("status=all&sort=-id", ["e", "i", "f", "w"]),
        ("status=triggered", ["e", "w"]),
        ("status=acknowledged", ["f"]),
        ("status=resolved", ["i"]),
        ("status=bogus", ["e", "w", "f"]),  # a bad tab falls back to Open
        ("status=all&q=sentry-w", ["w"]),  # the dedup key
    ],
)
def test_tabs_sorts_and_search(
    client: FlaskClient, four: dict[str, int], query: str, expected: list[str]
) -> None:
    page = client.get(f"/incidents?{query}").get_data(as_text=True)
    rows = client.get(f"/incidents/rows?{query}").get_data(as_text=True)

    assert _rows(page) == [four[key] for key in expected]
    assert _rows(rows) == _rows(page)
    assert 'data-triggered-count="2"' in rows


def test_bulk_acknowledge_changes_the_selected_and_reports_the_refused(
    client: FlaskClient, bridge: Bridge, four: dict[str, int]
) -> None:
    token = csrf_token(client, "/incidents")
    ids = [four["e"], four["w"], four["f"]]

    done = client.post(
        "/incidents/bulk",
        data={
            "csrf_token": token,
            "action": "acknowledge",
            "ids": [str(i) for i in ids],
            "next": "/incidents?status=all",
        },
    )

    assert done.status_code == 302
    assert done.headers["Location"] == "/incidents?status=all"
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert f"Acknowledged 2 incidents: #{four['e']}, #{four['w']}." in page
    assert f"Incident #{four['f']}: The incident is already acknowledged." in page
    assert [_status(bridge, i) for i in ids] == ["acknowledged"] * 3
    with bridge.database.reading() as session:
        entries = list(
            session.scalars(
                select(TimelineEntry).where(
                    TimelineEntry.incident_id == four["e"], TimelineEntry.kind == "acknowledged"
                )
            )
        )
    assert [entry.actor for entry in entries] == ["oncall@example.com"]


def test_one_rows_button_acts_on_that_row_only(
    client: FlaskClient, bridge: Bridge, four: dict[str, int]
) -> None:
    page = client.get("/incidents").get_data(as_text=True)
    assert f'name="row_action" value="resolve:{four["w"]}"' in page
    token = csrf_token(client, "/incidents")

    client.post(
        "/incidents/bulk",
        data={"csrf_token": token, "row_action": f"resolve:{four['w']}", "ids": [str(four["e"])]},
    )

    assert _status(bridge, four["w"]) == "resolved"
    assert _status(bridge, four["e"]) == "triggered"


def test_bulk_needs_the_csrf_token_a_selection_and_a_known_action(
    client: FlaskClient, bridge: Bridge, four: dict[str, int]
) -> None:
    forged = client.post("/incidents/bulk", data={"action": "resolve", "ids": [str(four["e"])]})
    assert forged.status_code == 302
    assert _status(bridge, four["e"]) == "triggered"
    token = csrf_token(client, "/incidents")

    def flashed() -> str:
        return client.get("/incidents").get_data(as_text=True)

    client.post("/incidents/bulk", data={"csrf_token": token, "action": "resolve"})
    assert "Select at least one incident first." in flashed()
    odd = client.post(
        "/incidents/bulk",
        data={"csrf_token": token, "action": "reopen", "ids": [str(four["i"])]},
    )
    assert "Choose Acknowledge or Resolve." in flashed()
    assert odd.status_code == 302 and _status(bridge, four["i"]) == "resolved"
    outside = client.post(
        "/incidents/bulk",
        data={"csrf_token": token, "action": "resolve", "next": "//evil.example/x"},
    )
    assert outside.headers["Location"] == "/incidents"


def test_the_rows_fragment_and_bulk_form_need_a_login(client: FlaskClient) -> None:
    rows = client.get("/incidents/rows")
    bulk = client.post("/incidents/bulk", data={"action": "resolve", "ids": ["1"]})

    assert rows.status_code == 302 and rows.headers["Location"].startswith("/login")
    assert bulk.status_code in {302, 400}
