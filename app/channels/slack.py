"""Slack incoming webhooks: a Block Kit message through slack_sdk's WebhookClient.

Slack answers 200 `ok`; a refusal is a 4xx with a short code as its body
(`invalid_payload`, `no_service`, `channel_not_found`, `action_prohibited`, ...), which is
permanent; 429 (with Retry-After) and 5xx are worth another try.
"""

from __future__ import annotations

import logging
import math
import socket
import ssl
from typing import Any
from urllib.error import URLError

from slack_sdk.errors import SlackRequestError
from slack_sdk.webhook import WebhookClient

from app.channels import http, rendering
from app.channels.base import ChannelSettings, ChannelTarget, Message, SendResult
from app.channels.scrub import scrub, target_secrets

# slack_sdk logs the full webhook URL (the secret) at DEBUG and error texts at ERROR. Its
# client gets a logger of its own that reaches no handler; outcomes are ours to log.
_SDK_LOGGER = logging.getLogger("app.channels.slack.sdk")
_SDK_LOGGER.propagate = False
_SDK_LOGGER.addHandler(logging.NullHandler())
_SDK_LOGGER.setLevel(logging.CRITICAL + 1)

# Block Kit limits (api.slack.com/reference/block-kit): header text 150, section text
# 3000, section field 2000, button text 75.
_HEADER_CHARS = 150
_SECTION_CHARS = 3000
_FIELD_CHARS = 2000
_BUTTON_CHARS = 75


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: object) -> str:
    """Slack mrkdwn: &, < and > are control characters (links, mentions)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(markdown: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(markdown, _SECTION_CHARS)}}


def _buttons(message: Message) -> list[dict[str, Any]]:
    elements = []
    for number, (text, href) in enumerate(rendering.links(message)):
        button: dict[str, Any] = {
            "type": "button",
            "text": {"type": "plain_text", "text": _clip(text, _BUTTON_CHARS)},
            "url": href,
            "action_id": f"link-{number}",
        }
        if text == "Acknowledge":
            button["style"] = "primary"
        elements.append(button)
    return [{"type": "actions", "elements": elements}] if elements else []


def build_payload(message: Message) -> dict[str, Any]:
    """The JSON body: `text` (notification fallback) and the Block Kit `blocks`."""
    header = {
        "type": "header",
        "text": {"type": "plain_text", "text": _clip(rendering.headline(message), _HEADER_CHARS)},
    }
    blocks: list[dict[str, Any]] = [header]
    if message.type == "incidents.digest":
        count = rendering.digest_count(message)
        lines = [
            f"*{count} new incidents* in *{_escape(rendering.service_name(message))}* "
            "arrived in a short time; they are summed up here instead of one message each."
        ]
        for item in rendering.digest_incidents(message)[: rendering.DIGEST_TITLES]:
            title = _escape(item.get("title") or "untitled incident")
            lines.append(f"• [{rendering.severity_words(item)}] {title}")
        if count > rendering.DIGEST_TITLES:
            lines.append(f"… and {count - rendering.DIGEST_TITLES} more")
        blocks.append(_section("\n".join(lines)))
    elif message.type == "test":
        text = message.document.get("message") or f"A test from {rendering.PRODUCT}."
        blocks.append(_section(_escape(text)))
    else:
        incident = rendering.incident_of(message)
        title = _escape(incident.get("title") or "untitled incident")
        blocks.append(_section(f"*{_escape(rendering.event_words(message))}*: {title}"))
        fields = [
            {"type": "mrkdwn", "text": _clip(f"*{label}*\n{_escape(value)}", _FIELD_CHARS)}
            for label, value in rendering.facts(message)[:10]  # Slack allows 10 fields
        ]
        blocks.append({"type": "section", "fields": fields})
    blocks += _buttons(message)
    return {"text": rendering.headline(message), "blocks": blocks}


def _no_answer(error: BaseException, timeout: float) -> SendResult:
    reason = error.reason if isinstance(error, URLError) else error
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return SendResult("retry", error=f"no answer within {timeout:g} s (timed out)")
    if isinstance(reason, ConnectionRefusedError):
        return SendResult("retry", error="connection refused")
    if isinstance(reason, ssl.SSLError):
        return SendResult("retry", error="TLS handshake with Slack failed")
    return SendResult("retry", error=f"could not reach Slack ({type(reason).__name__})")


def send(target: ChannelTarget, message: Message, settings: ChannelSettings) -> SendResult:
    if not target.url:
        return SendResult("failed", error="the Slack channel has no webhook URL")
    client = WebhookClient(
        target.url,
        # WebhookClient takes whole seconds; a fraction is rounded up, never to zero.
        timeout=max(1, math.ceil(settings.timeout_seconds)),
        logger=_SDK_LOGGER,
        retry_handlers=[],  # the outbox retries, with backoff and a record of each try
    )
    try:
        response = client.send_dict(build_payload(message))
    except SlackRequestError:
        return SendResult("failed", error="the Slack webhook URL is not an http(s) URL")
    except (URLError, OSError) as error:  # socket.timeout is an OSError
        return _no_answer(error, settings.timeout_seconds)
    outcome = http.outcome_for_status(response.status_code)
    if outcome == "sent":
        return SendResult("sent", status_code=response.status_code)
    code = scrub(response.body or "", target_secrets(target), limit=100)
    retry_after = None
    if outcome == "retry":
        headers = {key.lower(): value for key, value in (response.headers or {}).items()}
        retry_after = http.parse_retry_after(_first(headers.get("retry-after")))
    return SendResult(
        outcome,
        status_code=response.status_code,
        error=f"Slack answered HTTP {response.status_code}" + (f": {code}" if code else ""),
        retry_after_seconds=retry_after,
    )


def _first(value: object) -> str | None:
    if isinstance(value, list):
        return str(value[0]) if value else None
    return None if value is None else str(value)
