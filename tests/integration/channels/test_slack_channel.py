"""The Slack adapter (slack_sdk's WebhookClient) against a receiver that answers as
Slack's incoming webhooks do: 200 `ok`, refusals as text codes."""

from __future__ import annotations

import logging
import time

import pytest

from app import channels
from app.channels.base import ChannelTarget
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support.channels import (
    channel_settings,
    channel_test_message,
    digest_message,
    incident_message,
)
from tests.support.ports import free_port

HOOK_PATH = "/services/T0A1B2C3D/B0E4F5G6H/zq8Nw2SecretSlackToken"


def slack(receiver: WebhookReceiver) -> ChannelTarget:
    return ChannelTarget("slack", "#checkout-alerts", url=receiver.url(HOOK_PATH))


def test_incident_message_is_block_kit_with_every_fact_and_link(
    webhook_receiver: WebhookReceiver,
) -> None:
    message = incident_message(title="TypeError: <cart> & total are undefined")

    result = channels.send(slack(webhook_receiver), message, channel_settings())

    assert (result.outcome, result.status_code) == ("sent", 200)
    [request] = webhook_receiver.requests
    assert request.path == HOOK_PATH
    assert request.headers["content-type"].startswith("application/json")
    body = request.json()
    assert body["text"] == "[CRITICAL] checkout: TypeError: <cart> & total are undefined"
    header, summary, facts, actions = body["blocks"]
    assert header["type"] == "header"
    assert "TypeError" in header["text"]["text"]
    # mrkdwn control characters from a Sentry title are escaped, never links or mentions
    assert summary["text"]["text"] == (
        "*New incident*: TypeError: &lt;cart&gt; &amp; total are undefined"
    )
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in facts["fields"]}
    assert fields["*Severity*"] == "Critical"
    assert fields["*Status*"] == "Triggered"
    assert fields["*Service*"] == "checkout"
    assert fields["*Events*"] == "1287"
    buttons = {b["text"]["text"]: b["url"] for b in actions["elements"]}
    assert buttons == {
        "Open the incident": "https://bridge.example.com/incidents/42",
        "Sentry issue CHECKOUT-3F": "https://acme.sentry.io/issues/1234567890/",
        "Acknowledge": message.ack_url,
    }


def test_an_incident_without_sentry_issue_or_ack_link_has_only_the_incident_button(
    webhook_receiver: WebhookReceiver,
) -> None:
    message = incident_message(
        "incident.resolved", ack_url=None, status="resolved", sentry={"issue_url": None}
    )

    channels.send(slack(webhook_receiver), message, channel_settings())

    body = webhook_receiver.requests[0].json()
    assert body["text"].startswith("[RESOLVED] checkout:")
    buttons = [b["text"]["text"] for b in body["blocks"][-1]["elements"]]
    assert buttons == ["Open the incident"]


def test_digest_names_the_count_the_top_titles_and_links_the_list(
    webhook_receiver: WebhookReceiver,
) -> None:
    channels.send(slack(webhook_receiver), digest_message(14), channel_settings())

    body = webhook_receiver.requests[0].json()
    assert body["text"] == "[DIGEST] checkout: 14 new incidents"
    section = body["blocks"][1]["text"]["text"]
    assert "*14 new incidents*" in section
    assert section.count("• ") == 10 and "… and 4 more" in section
    assert body["blocks"][-1]["elements"][0]["url"].endswith("service=checkout&status=triggered")


def test_test_message_says_it_is_a_test(webhook_receiver: WebhookReceiver) -> None:
    result = channels.send(slack(webhook_receiver), channel_test_message(), channel_settings())

    body = webhook_receiver.requests[0].json()
    assert result.outcome == "sent"
    assert body["text"].startswith("[TEST] checkout")
    assert "test notification for the checkout channel" in body["blocks"][1]["text"]["text"]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "invalid_payload"),
        (404, "no_service"),
        (404, "channel_not_found"),
        (403, "action_prohibited"),
    ],
)
def test_slack_refusals_fail_permanently_with_slacks_code(
    webhook_receiver: WebhookReceiver, status: int, code: str
) -> None:
    webhook_receiver.respond(status, code)

    result = channels.send(slack(webhook_receiver), incident_message(), channel_settings())

    assert (result.outcome, result.status_code) == ("failed", status)
    assert result.error == f"Slack answered HTTP {status}: {code}"


def test_rate_limit_is_retried_after_retry_after(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.respond(429, "rate_limited", headers={"Retry-After": "2"})

    result = channels.send(slack(webhook_receiver), incident_message(), channel_settings())

    assert (result.outcome, result.status_code, result.retry_after_seconds) == ("retry", 429, 2.0)
    assert len(webhook_receiver.requests) == 1  # slack_sdk's own retries are off


def test_slack_5xx_is_retried_and_the_next_try_goes_through(
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.respond(503, "service_unavailable", times=2)
    message = incident_message()

    outcomes = [
        channels.send(slack(webhook_receiver), message, channel_settings()).outcome
        for _ in range(3)
    ]

    assert outcomes == ["retry", "retry", "sent"]


@pytest.mark.timing
def test_a_slow_slack_is_a_timeout_to_retry(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.respond(200, "ok", delay=3)
    started = time.monotonic()

    result = channels.send(
        slack(webhook_receiver), incident_message(), channel_settings(timeout_seconds=1)
    )

    assert result.outcome == "retry" and "timed out" in (result.error or "")
    assert time.monotonic() - started < 2.5


def test_connection_refused_is_retried_without_the_url(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{free_port()}{HOOK_PATH}"

    result = channels.send(
        ChannelTarget("slack", "gone", url=url), incident_message(), channel_settings()
    )

    assert (result.outcome, result.error) == ("retry", "connection refused")
    for text in [result.error] + [record.getMessage() for record in caplog.records]:
        assert "zq8Nw2SecretSlackToken" not in text and "127.0.0.1:" not in text


def test_no_webhook_url_in_errors_or_logs_even_at_debug(
    webhook_receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    target = slack(webhook_receiver)
    webhook_receiver.respond(400, f"invalid_token for {target.url}")

    results = [channels.send(target, incident_message(), channel_settings()) for _ in range(2)]

    assert [r.outcome for r in results] == ["failed", "sent"]
    assert caplog.records, "the adapter's own outcome lines are logged"
    for text in [r.error or "" for r in results] + [rec.getMessage() for rec in caplog.records]:
        assert "zq8Nw2SecretSlackToken" not in text and "T0A1B2C3D" not in text
