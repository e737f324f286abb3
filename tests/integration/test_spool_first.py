"""Overloaded deliveries answered before Flask (app/web/spool_first.py): the same answer and
the same outcome as the route's spooled answer, at a fraction of its cost; whatever needs
the route's error answers still gets them, with nothing decided or counted twice."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import EnvironBuilder

from app import create_app
from app.extensions import Bridge
from app.services.spooled_deliveries import drain_spool
from app.store.models import Delivery, Incident
from app.web import spool_first
from app.web.admission import ADMISSIONS, ARRIVED_AT_KEY, LISTEN_BACKLOG_KEY, AdmissionControl
from config.settings import Settings
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build, load, seen_at

_SENT = iter(range(1_791_000_000, 1_800_000_000, 10))
_OVERLOADED = {LISTEN_BACKLOG_KEY: lambda: 1000}


class _RouteSpy:
    """Counts the requests Flask itself dispatched (the middleware answers without it)."""

    def __init__(self, app: Flask) -> None:
        self.calls = 0
        self._inner = app.full_dispatch_request

    def __call__(self) -> Any:
        self.calls += 1
        return self._inner()


@pytest.fixture
def route(app: Flask) -> Iterator[_RouteSpy]:
    """Admission control spooling at once past 8 waiting connections; the route watched."""
    spy = _RouteSpy(app)
    app.full_dispatch_request = spy  # type: ignore[method-assign]
    app.extensions["bridge_admission"] = AdmissionControl(slots=4, wait_seconds=0.5, max_backlog=8)
    try:
        yield spy
    finally:
        app.extensions.pop("bridge_admission", None)
        del app.full_dispatch_request


def _delivery(integration: MadeIntegration, secret: str | None = None) -> Any:
    resource, payload = load("integration_issue_created")
    at = next(_SENT)
    return build(
        seen_at(payload, at),
        resource=resource,
        secret=secret if secret is not None else integration.secret,
        timestamp=at,
    )


def _count(decision: str) -> float:
    return ADMISSIONS.labels(decision=decision)._value.get()


def _drain(bridge: Bridge) -> None:
    report = drain_spool(bridge.database, bridge.secrets, bridge.spool, 64 * 1024)
    assert report.remaining == 0


def _drained_events(bridge: Bridge) -> int:
    """The spool drained: the one incident's event count."""
    _drain(bridge)
    with bridge.database.reading() as session:
        return session.scalars(select(Incident.event_count)).one()


def _warm(client: FlaskClient, integration: MadeIntegration) -> None:
    """One delivery applied by the route: the worker's copy of the integration loaded."""
    warm = _delivery(integration)
    assert client.post(integration.url, data=warm.body, headers=warm.headers).status_code == 202


def test_an_overloaded_delivery_is_answered_before_flask_as_the_route_would(
    app: Flask,
    client: FlaskClient,
    bridge: Bridge,
    route: _RouteSpy,
    make_integration: Callable[..., MadeIntegration],
) -> None:
    integration = make_integration(secret="s3cr3t")
    backlog_before = _count("spooled_backlog")
    # Without a backlog: applied by the route (which also loads the worker's copy of the
    # integration, as the first deliveries of an overload do).
    first = _delivery(integration)
    applied = client.post(integration.url, data=first.body, headers=first.headers)
    assert applied.status_code == 202 and applied.get_json()["action"] == "triggered"
    # Every apply slot taken: the route waits out the budget and spools. Its answer, to
    # compare with.
    control = AdmissionControl(slots=1, wait_seconds=0.05, max_backlog=8)
    app.extensions["bridge_admission"] = control
    with control.slot(time.time()):
        busy = _delivery(integration)
        by_route = client.post(integration.url, data=busy.body, headers=busy.headers)
    assert route.calls == 2 and by_route.get_json()["action"] == "spooled"

    second = _delivery(integration)
    early = client.post(
        integration.url,
        data=second.body,
        headers={**second.headers, "X-Request-ID": "trace-me-1"},
        environ_base=_OVERLOADED,
    )

    assert route.calls == 2  # no Flask dispatch for it
    assert early.status_code == 202
    answer, expected = early.get_json(), by_route.get_json()
    assert answer["spool_id"] and answer["spool_id"] != expected["spool_id"]
    assert {**answer, "spool_id": None} == {**expected, "spool_id": None}
    assert early.headers["X-Request-ID"] == "trace-me-1"
    for name in ("Content-Type", "Content-Security-Policy", "X-Content-Type-Options",
                 "X-Frame-Options", "Referrer-Policy"):  # fmt: skip
        assert early.headers[name] == by_route.headers[name], name
    assert early.data.endswith(b"\n") and by_route.data.endswith(b"\n")
    assert _count("spooled_backlog") == backlog_before + 1

    assert _drained_events(bridge) == 3


def test_during_an_outage_a_delivery_is_spooled_before_flask(
    client: FlaskClient,
    bridge: Bridge,
    route: _RouteSpy,
    make_integration: Callable[..., MadeIntegration],
) -> None:
    integration = make_integration(secret="s3cr3t")
    delivery = _delivery(integration)
    bridge.database.outage.trip()  # its probe finds the database back within 0.5 s

    answer = client.post(integration.url, data=delivery.body, headers=delivery.headers)

    assert route.calls == 0
    assert answer.status_code == 202
    assert answer.get_json()["action"] == "spooled"
    assert "unavailable" in answer.get_json()["reason"]
    # The app outlives the test: let its probe find the database back before the next.
    deadline = time.monotonic() + 10
    while bridge.database.outage.is_tripped and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not bridge.database.outage.is_tripped
    assert _drained_events(bridge) == 1


def test_a_badly_signed_delivery_is_spooled_unlimited_and_stored_refused_by_the_drain(
    client: FlaskClient,
    bridge: Bridge,
    route: _RouteSpy,
    make_integration: Callable[..., MadeIntegration],
) -> None:
    integration = make_integration(secret="s3cr3t")
    _warm(client, integration)
    forged = _delivery(integration, secret="not-the-secret")

    answer = client.post(
        integration.url, data=forged.body, headers=forged.headers, environ_base=_OVERLOADED
    )

    assert answer.status_code == 202 and answer.get_json()["action"] == "spooled"
    _drain(bridge)
    with bridge.database.reading() as session:
        refused = session.scalars(select(Delivery).order_by(Delivery.id)).all()[-1]
        # Stored as refused, with the answer it was given (202, spooled), as the route's.
        assert (refused.decision, refused.error_code, refused.http_status) == (
            "refused",
            "signature_mismatch",
            202,
        )


@pytest.fixture
def limited_app(settings: Settings, tmp_path: Path) -> Iterator[Flask]:
    application = create_app(replace(settings, instance_path=tmp_path, rate_limit_per_minute=3))
    application.extensions["bridge_admission"] = AdmissionControl(
        slots=4, wait_seconds=0.5, max_backlog=8
    )
    yield application
    application.extensions["bridge"].database.dispose()


def test_past_the_limit_the_route_answers_429_and_each_delivery_spends_its_budget_once(
    limited_app: Flask, bridge: Bridge, make_integration: Callable[..., MadeIntegration]
) -> None:
    integration = make_integration(secret="s3cr3t")
    client = limited_app.test_client()
    limited_bridge: Bridge = limited_app.extensions["bridge"]
    # Applied (budget 1 of 3), a forged one spooled (no budget of the sender's spent),
    # two spooled before Flask (2 and 3), then one over.
    statuses = []
    for index in range(5):
        delivery = _delivery(integration, secret="forged" if index == 1 else None)
        environ = _OVERLOADED if index else {ARRIVED_AT_KEY: time.time()}
        answer = client.post(
            integration.url, data=delivery.body, headers=delivery.headers, environ_base=environ
        )
        statuses.append((answer.status_code, (answer.get_json() or {}).get("action")))

    assert statuses == [
        (202, "triggered"),
        (202, "spooled"),
        (202, "spooled"),
        (202, "spooled"),
        (429, None),
    ]
    assert 1 <= int(answer.headers["Retry-After"]) <= 60
    assert answer.get_json()["error"]["code"] == "rate_limited"
    report = drain_spool(
        limited_bridge.database, limited_bridge.secrets, limited_bridge.spool, 64 * 1024
    )
    # The forged one is refused by the drain as it reads it (counted with the applied
    # ones' reads), the limited one stored refused as it was answered.
    assert (report.applied + report.already_applied, report.refused, report.remaining) == (
        3,
        1,
        0,
    )
    with bridge.database.reading() as session:
        assert session.scalars(select(Incident.event_count)).one() == 3
        refused = session.scalars(
            select(Delivery).where(Delivery.error_code == "rate_limited")
        ).one()
        assert (refused.error_code, refused.http_status) == ("rate_limited", 429)
        # Read in full for its record, as the route's limited deliveries are.
        assert refused.format and refused.dedup_key


def _environ(
    integration: MadeIntegration, body: bytes, headers: dict[str, str], **extra: Any
) -> dict[str, Any]:
    environ = EnvironBuilder(
        path="/api/integrations/sentry",
        method="POST",
        query_string={"integrationId": integration.id},
        data=body,
        headers=headers,
    ).get_environ()
    environ.update(_OVERLOADED)
    environ.update(extra)
    return environ


def _call(app: Flask, environ: dict[str, Any]) -> tuple[str, bytes]:
    seen: list[str] = []

    def start_response(status: str, _headers: Any, _exc: Any = None) -> None:
        seen.append(status)

    body = b"".join(app(environ, start_response))
    return seen[0], body


class _Stalled(io.RawIOBase):
    """A client that sent half its body and then nothing (the server's read times out)."""

    def __init__(self, part: bytes) -> None:
        self._part = part

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._part:
            raise TimeoutError("timed out")
        count = min(len(buffer), len(self._part))
        buffer[:count], self._part = self._part[:count], self._part[count:]
        return count


def test_a_body_that_does_not_arrive_whole_gets_the_routes_answer(
    app: Flask,
    bridge: Bridge,
    route: _RouteSpy,
    make_integration: Callable[..., MadeIntegration],
) -> None:
    integration = make_integration(secret="s3cr3t")
    delivery = _delivery(integration)
    half = delivery.body[: len(delivery.body) // 2]
    stalled = _environ(integration, delivery.body, delivery.headers)
    stalled["wsgi.input"] = io.BufferedReader(_Stalled(half))
    stalled["wsgi.input_terminated"] = True  # as gunicorn says: read its stream as it is

    status, answer = _call(app, stalled)

    assert route.calls == 1  # handed on
    assert status.startswith("408"), answer
    assert b"did not arrive in time" in answer
    assert bridge.spool.pending() == []


def test_requests_out_of_the_ordinary_are_left_to_the_route(
    client: FlaskClient,
    bridge: Bridge,
    route: _RouteSpy,
    make_integration: Callable[..., MadeIntegration],
) -> None:
    integration = make_integration(secret="s3cr3t")
    delivery = _delivery(integration)
    no_id = client.post(
        "/api/integrations/sentry",
        data=delivery.body,
        headers=delivery.headers,
        environ_base=_OVERLOADED,
    )
    too_large = client.post(
        integration.url,
        data=b"{" + b" " * (bridge.settings.max_body_bytes + 1) + b"}",
        headers=delivery.headers,
        environ_base=_OVERLOADED,
    )

    # Both taken by the route, which under overload spools whatever it reads (the drain
    # then refuses them, as in a database outage).
    assert route.calls == 2
    assert no_id.status_code == too_large.status_code == 202
    assert len(bridge.spool.pending()) == 2


def test_a_failure_before_flask_costs_no_delivery_its_answer(
    client: FlaskClient,
    bridge: Bridge,
    route: _RouteSpy,
    make_integration: Callable[..., MadeIntegration],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    integration = make_integration(secret="s3cr3t")
    _warm(client, integration)

    def broken(*_args: Any, **_kwargs: Any) -> str:
        raise RuntimeError("a bug in the early path")

    monkeypatch.setattr(spool_first, "spool_delivery", broken)
    delivery = _delivery(integration)
    answer = client.post(
        integration.url, data=delivery.body, headers=delivery.headers, environ_base=_OVERLOADED
    )

    assert route.calls == 2  # the warm-up, and this one handed on
    assert answer.status_code == 202 and answer.get_json()["action"] == "spooled"
    assert len(bridge.spool.pending()) == 1  # kept once, by the route
    assert _drained_events(bridge) == 2


@pytest.mark.parametrize("declared", ["", "12x", "\u00b2", "-5", "0"])
def test_a_content_length_that_is_not_a_plain_count_is_left_to_the_route(
    app: Flask, route: _RouteSpy, make_integration: Callable[..., MadeIntegration], declared: str
) -> None:
    integration = make_integration(secret="s3cr3t")
    delivery = _delivery(integration)
    environ = _environ(integration, delivery.body, delivery.headers, CONTENT_LENGTH=declared)

    status, _answer = _call(app, environ)

    assert route.calls == 1
    assert status.split()[0].isdigit() and not status.startswith("5")
