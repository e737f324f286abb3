"""The Apprise adapter through Apprise's json:// plugin, pointed at the loopback receiver
(json:// POSTs a JSON document with title, message and type)."""

from __future__ import annotations

import logging
import time

import pytest

from app import channels
from app.channels.base import ChannelTarget
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support.channels import channel_settings, digest_message, incident_message
from tests.support.ports import free_port

TOKEN_PATH = "/notify/ntfyTopicSecret4471"


def apprise_target(receiver: WebhookReceiver, path: str = TOKEN_PATH) -> ChannelTarget:
    return ChannelTarget("apprise", "phones", url=f"json://127.0.0.1:{receiver.port}{path}")


def test_json_target_gets_title_body_and_a_failure_type(webhook_receiver: WebhookReceiver) -> None:
    message = incident_message()

    result = channels.send(apprise_target(webhook_receiver), message, channel_settings())

    assert result.outcome == "sent" and result.error is None
    [request] = webhook_receiver.requests
    assert request.path == TOKEN_PATH
    body = request.json()
    assert body["title"] == "[CRITICAL] checkout: TypeError: cart is undefined"
    assert body["type"] == "failure"
    assert "Events: 1287" in body["message"]
    assert "https://bridge.example.com/incidents/42" in body["message"]
    assert message.ack_url in body["message"]


def test_resolved_and_digest_messages_map_to_apprise_types(
    webhook_receiver: WebhookReceiver,
) -> None:
    channels.send(
        apprise_target(webhook_receiver), incident_message("incident.resolved"), channel_settings()
    )
    channels.send(apprise_target(webhook_receiver), digest_message(3), channel_settings())

    resolved, digest = (request.json() for request in webhook_receiver.requests)
    assert resolved["type"] == "success" and resolved["title"].startswith("[RESOLVED]")
    assert digest["type"] == "warning" and digest["title"] == "[DIGEST] checkout: 3 new incidents"


@pytest.mark.parametrize("status", [400, 404, 500, 503])
def test_any_failure_is_retried_because_apprise_cannot_say_which_kind(
    webhook_receiver: WebhookReceiver, status: int
) -> None:
    webhook_receiver.respond(status, "nope")

    result = channels.send(apprise_target(webhook_receiver), incident_message(), channel_settings())

    assert result.outcome == "retry"
    assert result.error is not None and str(status) in result.error


@pytest.mark.timing
def test_a_slow_service_is_cut_off_by_the_timeout(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.respond(200, "ok", delay=4)
    started = time.monotonic()

    result = channels.send(
        apprise_target(webhook_receiver), incident_message(), channel_settings(timeout_seconds=0.5)
    )

    assert result.outcome == "retry"
    assert time.monotonic() - started < 2.5


def test_connection_refused_is_retried_and_nothing_leaks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    target = ChannelTarget(
        "apprise", "gone", url=f"json://user:hunter2pw@127.0.0.1:{free_port()}{TOKEN_PATH}"
    )

    result = channels.send(target, incident_message(), channel_settings())

    assert result.outcome == "retry" and result.error
    # Apprise's own records (they quote URL paths at DEBUG) stop at the "apprise" logger;
    # pytest attaches its capture to non-propagating loggers too, so they are set aside.
    assert logging.getLogger("apprise").propagate is False
    reaching_the_log = [r.getMessage() for r in caplog.records if r.name != "apprise"]
    assert reaching_the_log
    for text in [result.error, *reaching_the_log]:
        assert "ntfyTopicSecret4471" not in text and "hunter2pw" not in text


def test_an_url_apprise_does_not_know_fails_at_once() -> None:
    target = ChannelTarget("apprise", "typo", url="jsno://127.0.0.1/hook")

    result = channels.send(target, incident_message(), channel_settings())

    assert result.outcome == "failed"
    assert result.error == "Apprise does not recognise the channel's URL"
