"""The signed webhook adapter against a real HTTP receiver on loopback."""

from __future__ import annotations

import json
import logging
import time

import pytest

from app import channels
from app.channels.base import ChannelTarget
from tests.fakes.webhook_receiver import WebhookReceiver, verify_standard_webhook
from tests.support.channels import channel_settings, incident_message
from tests.support.ports import free_port

SECRET = channels.generate_webhook_secret()
PATH_SECRET = "/hooks/T0001/B0002/xoxsecretpathtoken9f8e7d"


def target(receiver: WebhookReceiver, secret: str = SECRET) -> ChannelTarget:
    return ChannelTarget("webhook", "ops hook", url=receiver.url(PATH_SECRET), secret=secret)


def test_delivery_is_the_document_signed_per_standard_webhooks(
    webhook_receiver: WebhookReceiver,
) -> None:
    message = incident_message()
    before = int(time.time())

    result = channels.send(target(webhook_receiver), message, channel_settings())

    assert result.outcome == "sent" and result.status_code == 200 and result.error is None
    assert result.latency_ms > 0
    [request] = webhook_receiver.requests
    assert request.method == "POST" and request.path == PATH_SECRET
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == message.notification_id
    assert before <= int(request.headers["webhook-timestamp"]) <= int(time.time())
    assert request.headers["webhook-signature"].startswith("v1,")
    assert verify_standard_webhook(SECRET, request)
    assert json.loads(request.body) == message.document


def test_signature_does_not_verify_with_another_secret_or_a_changed_body(
    webhook_receiver: WebhookReceiver,
) -> None:
    channels.send(target(webhook_receiver), incident_message(), channel_settings())
    [request] = webhook_receiver.requests

    assert not verify_standard_webhook(channels.generate_webhook_secret(), request)
    tampered = type(request)(
        request.method, request.path, request.query, request.headers, request.body + b" "
    )
    assert not verify_standard_webhook(SECRET, tampered)


def test_a_retry_reuses_the_webhook_id_so_the_receiver_can_drop_it(
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.respond(503, "down for maintenance")
    message = incident_message()

    first = channels.send(target(webhook_receiver), message, channel_settings())
    second = channels.send(target(webhook_receiver), message, channel_settings())

    assert (first.outcome, first.status_code) == ("retry", 503)
    assert first.error == "receiver answered HTTP 503: down for maintenance"
    assert second.outcome == "sent"
    ids = {request.headers["webhook-id"] for request in webhook_receiver.requests}
    assert ids == {message.notification_id}


def test_429_is_retried_after_the_receivers_retry_after(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.respond(429, "slow down", headers={"Retry-After": "2"})

    result = channels.send(target(webhook_receiver), incident_message(), channel_settings())

    assert (result.outcome, result.status_code, result.retry_after_seconds) == ("retry", 429, 2.0)


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_other_4xx_fail_at_once(webhook_receiver: WebhookReceiver, status: int) -> None:
    webhook_receiver.respond(status, "no such hook")

    result = channels.send(target(webhook_receiver), incident_message(), channel_settings())

    assert (result.outcome, result.status_code) == ("failed", status)


def test_a_redirect_is_not_followed(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.respond(302, headers={"Location": webhook_receiver.url("/elsewhere")})

    result = channels.send(target(webhook_receiver), incident_message(), channel_settings())

    assert (result.outcome, result.status_code) == ("failed", 302)
    assert "redirects are not followed" in (result.error or "")
    assert [request.path for request in webhook_receiver.requests] == [PATH_SECRET]


@pytest.mark.timing
def test_a_receiver_slower_than_the_timeout_is_retried(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.respond(200, "ok", delay=3)
    started = time.monotonic()

    result = channels.send(
        target(webhook_receiver), incident_message(), channel_settings(timeout_seconds=0.5)
    )

    assert result.outcome == "retry" and "timed out" in (result.error or "")
    assert time.monotonic() - started < 2.5


def test_connection_refused_is_retried() -> None:
    url = f"http://127.0.0.1:{free_port()}{PATH_SECRET}"

    result = channels.send(
        ChannelTarget("webhook", "gone", url=url, secret=SECRET),
        incident_message(),
        channel_settings(),
    )

    assert (result.outcome, result.status_code) == ("retry", None)
    assert result.error == "connection refused"


def test_a_target_without_a_secret_fails_without_sending(webhook_receiver: WebhookReceiver) -> None:
    result = channels.send(
        ChannelTarget("webhook", "unsigned", url=webhook_receiver.url()),
        incident_message(),
        channel_settings(),
    )

    assert result.outcome == "failed"
    assert webhook_receiver.requests == []


def test_no_url_or_secret_in_errors_or_log_records(
    webhook_receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = target(webhook_receiver)
    # A receiver that echoes the URL it was called on, as some error pages do.
    webhook_receiver.respond(404, f"no route for {hook.url} (secret {SECRET})")
    webhook_receiver.respond(500, f"POST {PATH_SECRET} failed")
    results = [channels.send(hook, incident_message(), channel_settings()) for _ in range(3)]
    refused = ChannelTarget(
        "webhook", "gone", url=f"http://127.0.0.1:{free_port()}{PATH_SECRET}", secret=SECRET
    )
    results.append(channels.send(refused, incident_message(), channel_settings()))

    assert [result.outcome for result in results] == ["failed", "retry", "sent", "retry"]
    errors = [result.error or "" for result in results]
    logged = [record.getMessage() for record in caplog.records]
    assert any("urllib3" in record.name for record in caplog.records)  # DEBUG really captured
    for text in errors + logged:
        assert "xoxsecretpathtoken9f8e7d" not in text and "T0001" not in text
        assert SECRET.removeprefix("whsec_") not in text
    for text in errors:
        assert "http://" not in text
