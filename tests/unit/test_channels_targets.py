"""Channel targets without a network: validation, masking, secrets, and the pieces of the
adapters that are pure (signatures, Retry-After, dedup keys, scrubbing)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from app import channels
from app.channels import http, pagerduty, webhook
from app.channels.base import ChannelSettings, ChannelTarget
from app.channels.scrub import scrub, target_secrets
from app.domain.errors import InvalidInput
from tests.support.channels import incident_message

SLACK_URL = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXabcd"
KEY = "0123456789abcdef0123456789abcdef"


def test_generated_secret_is_whsec_and_32_random_bytes() -> None:
    first, second = channels.generate_webhook_secret(), channels.generate_webhook_secret()

    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32


def test_signature_matches_the_standard_webhooks_construction() -> None:
    key = b"\x01" * 24
    secret = "whsec_" + base64.b64encode(key).decode()
    body = b'{"type":"test"}'

    headers = webhook.signed_headers(secret, "ntf_1", 1674087231, body)

    expected = hmac.new(key, b"ntf_1.1674087231." + body, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(expected).decode()
    assert headers["webhook-timestamp"] == "1674087231" and headers["webhook-id"] == "ntf_1"


@pytest.mark.parametrize(
    ("target", "field"),
    [
        (ChannelTarget("webhook", "w", url="ftp://example.com/x", secret="whsec_AAAA"), "url"),
        (ChannelTarget("webhook", "w", url="https://example.com/x"), "secret"),
        (ChannelTarget("webhook", "w", url="https://example.com/x", secret="whsec_!!"), "secret"),
        (ChannelTarget("webhook", "w", url="https://example.com/x", secret="plain"), "secret"),
        (ChannelTarget("slack", "s"), "url"),
        (ChannelTarget("slack", "s", url="hooks.slack.com/services/x"), "url"),
        (ChannelTarget("email", "e"), "recipients"),
        (
            ChannelTarget("email", "e", recipients=("ops@example.com", "not an address")),
            "recipients",
        ),
        (
            ChannelTarget("email", "e", recipients=("ops@example.com\r\nBcc: x@evil.test",)),
            "recipients",
        ),
        (ChannelTarget("pagerduty", "p"), "routing_key"),
        (ChannelTarget("pagerduty", "p", routing_key=KEY[:-1]), "routing_key"),
        (ChannelTarget("pagerduty", "p", routing_key=KEY[:-1] + "-"), "routing_key"),
        (ChannelTarget("apprise", "a", url="nosuchservice://token/abc"), "url"),
        (ChannelTarget("apprise", "a"), "url"),
        (ChannelTarget("sms", "x"), "kind"),
    ],
)
def test_unusable_targets_are_refused_with_the_field_named(
    target: ChannelTarget, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        channels.validate_target(target)

    assert refused.value.details["field"] == field


def test_a_refusal_never_repeats_the_secret() -> None:
    secret_url = "nosuchservice://sup3rs3cr3tt0k3n/abc"
    with pytest.raises(InvalidInput) as refused:
        channels.validate_target(ChannelTarget("apprise", "a", url=secret_url))

    assert "sup3rs3cr3tt0k3n" not in refused.value.message


@pytest.mark.parametrize(
    "target",
    [
        ChannelTarget(
            "webhook", "w", url="https://example.com/h", secret=webhook.generate_secret()
        ),
        ChannelTarget("slack", "s", url=SLACK_URL),
        ChannelTarget("email", "e", recipients=("ops@example.com", "lead@example.co.uk")),
        ChannelTarget("pagerduty", "p", routing_key=KEY),
        ChannelTarget("apprise", "a", url="ntfy://ntfy.sh/checkout-alerts"),
        ChannelTarget("apprise", "a", url="json://127.0.0.1:8080/hook"),
    ],
)
def test_usable_targets_pass(target: ChannelTarget) -> None:
    channels.validate_target(target)


def test_masks_show_enough_to_recognise_and_never_the_secret() -> None:
    assert (
        channels.mask(ChannelTarget("slack", "s", url=SLACK_URL))
        == "https://hooks.slack.com/…/abcd"
    )
    assert channels.mask(ChannelTarget("pagerduty", "p", routing_key=KEY)) == "routing key …cdef"
    email = ChannelTarget("email", "e", recipients=("ops@example.com", "a@example.com", "b@x.io"))
    assert channels.mask(email) == "ops@example.com, +2"
    tgram = channels.mask(ChannelTarget("apprise", "a", url="tgram://123456:ABCsecretDEF/98765"))
    assert tgram == "tgram://…/8765" and "ABCsecret" not in tgram
    assert channels.mask(ChannelTarget("slack", "s", url="https://x.io/ab")) == "https://x.io/…"


def test_sending_to_an_unknown_kind_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown channel kind"):
        channels.send(ChannelTarget("fax", "f"), incident_message(), ChannelSettings())


def test_an_adapter_that_crashes_becomes_a_retry_without_its_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def crash(*_args: object) -> None:
        raise RuntimeError("boom at https://hooks.example.com/secret-path")

    monkeypatch.setitem(channels._ADAPTERS, "webhook", crash)

    result = channels.send(ChannelTarget("webhook", "w"), incident_message(), ChannelSettings())

    assert result.outcome == "retry"
    assert result.error == "the webhook adapter failed (RuntimeError)"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2", 2.0),
        ("0", 0.0),
        (" 120 ", 120.0),
        ("Fri, 14 Mar 2025 09:27:23 GMT", 30.0),
        ("Fri, 14 Mar 2025 09:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(
    value: str | None, seconds: float | None
) -> None:
    now = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)

    assert http.parse_retry_after(value, now) == seconds


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "sent"),
        (202, "sent"),
        (204, "sent"),
        (301, "failed"),
        (400, "failed"),
        (401, "failed"),
        (404, "failed"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_http_statuses_map_to_outcomes(status: int, outcome: str) -> None:
    assert http.outcome_for_status(status) == outcome


def test_pagerduty_dedup_key_is_derived_from_service_and_bridge_key() -> None:
    message = incident_message(dedup_key="sentry:acme:99")

    assert pagerduty.dedup_key(message) == "bridge-7-sentry:acme:99"
    long_a = pagerduty.clip_dedup_key("a" * 300)
    long_b = pagerduty.clip_dedup_key("a" * 299 + "b")
    assert len(long_a) == len(long_b) == 255 and long_a != long_b


def test_scrub_removes_urls_secrets_and_their_parts() -> None:
    target = ChannelTarget("apprise", "a", url="tgram://123456:ABCsecretDEF/98765432", secret=None)
    text = "failed for tgram://123456:ABCsecretDEF/98765432 (bot 123456:ABCsecretDEF) see https://x.io/y"

    cleaned = scrub(text, target_secrets(target))

    assert "ABCsecret" not in cleaned and "https://" not in cleaned and "98765432" not in cleaned
    assert cleaned.startswith("failed for [redacted]")
    assert len(scrub("x" * 1000, [])) == 200
