"""Metrics, request ids and JSON logs."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.web.observability import configure_logging
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build


def metric(client: FlaskClient, name: str, labels: str = "") -> float:
    text = client.get("/metrics").get_data(as_text=True)
    pattern = re.compile(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$", re.M)
    match = pattern.search(text)
    return float(match.group(1)) if match else 0.0


def test_metrics_count_deliveries_by_outcome_signature_failures_and_latency(
    client: FlaskClient, make_integration: Callable[..., MadeIntegration]
) -> None:
    integration = make_integration(secret="s3cr3t")
    before = {
        "triggered": metric(client, "bridge_deliveries_total", '{outcome="triggered"}'),
        "mismatch": metric(client, "bridge_deliveries_total", '{outcome="signature_mismatch"}'),
        "failures": metric(client, "bridge_signature_failures_total", '{reason="mismatch"}'),
        "latency": metric(client, "bridge_ingest_seconds_count"),
    }
    good = build("integration_issue_created", secret="s3cr3t")
    bad = build("integration_issue_created", secret="wrong")
    client.post(integration.url, data=good.body, headers=good.headers)
    client.post(integration.url, data=bad.body, headers=bad.headers)

    assert (
        metric(client, "bridge_deliveries_total", '{outcome="triggered"}')
        == before["triggered"] + 1
    )
    assert (
        metric(client, "bridge_deliveries_total", '{outcome="signature_mismatch"}')
        == before["mismatch"] + 1
    )
    assert (
        metric(client, "bridge_signature_failures_total", '{reason="mismatch"}')
        == before["failures"] + 1
    )
    assert metric(client, "bridge_ingest_seconds_count") == before["latency"] + 2
    text = client.get("/metrics").get_data(as_text=True)
    assert 'bridge_job_lag_seconds{queue="spool"} 0.0' in text
    assert 'bridge_job_lag_seconds{queue="sentry_jobs"}' in text


def test_every_response_carries_a_request_id(client: FlaskClient) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    made = client.get("/healthz")
    hostile = client.get("/healthz", headers={"X-Request-ID": "<script>" * 40})

    assert given.headers["X-Request-ID"] == "abc-123"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["X-Request-ID"])


def test_sentry_request_id_becomes_the_log_request_id(
    app: Flask,
    client: FlaskClient,
    make_integration: Callable[..., MadeIntegration],
    capsys: pytest.CaptureFixture[str],
) -> None:
    integration = make_integration()
    delivery = build("integration_issue_created", request_id="feed" * 8)
    configure_logging("INFO", as_json=True)
    try:
        response = client.post(integration.url, data=delivery.body, headers=delivery.headers)
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    finally:
        configure_logging("WARNING", as_json=True)
        logging.getLogger().setLevel("WARNING")

    assert response.headers["X-Request-ID"] == "feed" * 8
    webhook = [line for line in lines if line["logger"] == "app.web.webhooks"]
    assert webhook, lines
    assert webhook[0]["request_id"] == "feed" * 8
    assert webhook[0]["level"] == "INFO"
    assert "action=triggered" in webhook[0]["message"]
    assert integration.id not in json.dumps(lines)


def test_metrics_can_be_protected_by_a_bearer_token(app: Flask, client: FlaskClient) -> None:
    # Issue 13: /metrics names the bridge's traffic and internals to whoever can reach it.
    from dataclasses import replace

    bridge = app.extensions["bridge"]
    original = bridge.settings
    bridge.settings = replace(original, metrics_token="scrape-me-please")
    try:
        anonymous = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        right = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"})
    finally:
        bridge.settings = original

    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert "BRIDGE_METRICS_TOKEN" in anonymous.get_json()["error"]["message"]
    assert "scrape-me-please" not in wrong.get_data(as_text=True)
    assert "bridge_deliveries_total" not in anonymous.get_data(as_text=True)
    assert right.status_code == 200
    assert "bridge_job_lag_seconds" in right.get_data(as_text=True)
