"""Outbound channel adapters: render a notification, send it with a timeout, and say
what came of it (SendResult). Nothing here decides *whether* to send.

One module per kind (webhook, slack, email, pagerduty, apprise); `send` dispatches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from app.channels import apprise, email, pagerduty, slack, webhook
from app.channels.base import ChannelSettings, ChannelTarget, Message, SendResult
from app.channels.targets import generate_webhook_secret, mask, validate_target

__all__ = ["generate_webhook_secret", "mask", "send", "validate_target"]

logger = logging.getLogger(__name__)

Adapter = Callable[[ChannelTarget, Message, ChannelSettings], SendResult]
_ADAPTERS: dict[str, Adapter] = {
    "webhook": webhook.send,
    "slack": slack.send,
    "email": email.send,
    "pagerduty": pagerduty.send,
    "apprise": apprise.send,
}


def send(target: ChannelTarget, message: Message, settings: ChannelSettings) -> SendResult:
    """Send one message through the adapter of target.kind; never raises for delivery
    problems (returns SendResult), raises ValueError only for an unknown kind."""
    adapter = _ADAPTERS.get(target.kind)
    if adapter is None:
        raise ValueError(f"unknown channel kind {target.kind!r}")
    started = time.monotonic()
    try:
        result = adapter(target, message, settings)
    except Exception as error:
        # A bug in an adapter must not stop the sender loop. The exception's text is
        # left out: library errors quote URLs, and URLs carry secrets.
        logger.error(
            "channel adapter crashed",
            extra={"kind": target.kind, "error_type": type(error).__name__},
        )
        result = SendResult(
            "retry", error=f"the {target.kind} adapter failed ({type(error).__name__})"
        )
    result = replace(result, latency_ms=round((time.monotonic() - started) * 1000, 1))
    logger.info(
        "notification %s via %s channel %r: %s",
        message.notification_id,
        target.kind,
        target.name,
        result.outcome,
        extra={
            "kind": target.kind,
            "outcome": result.outcome,
            "status_code": result.status_code,
            "latency_ms": result.latency_ms,
        },
    )
    return result
