"""Everything else (Pushover, Teams, Discord, Telegram, ntfy, Opsgenie, ...) through Apprise.

One `apprise.Apprise()` per send, holding the one plugin the channel's URL names. The
timeout is set twice: the plugin's socket timeouts (Apprise's `cto`/`rto` URL options,
set on the plugin object) bound each request, and `notify(timeout=...)` bounds the
whole call, which Apprise reports as TIMEOUT.

Apprise tells success from failure but not a transient failure from a permanent one
(its plugins log the HTTP status, they do not return it), so every failure is retried;
a channel that can never work shows up as a notification that failed after the retry
window, with Apprise's own (scrubbed) reason beside each attempt.
"""

from __future__ import annotations

import logging

import apprise

from app.channels import rendering
from app.channels.base import ChannelSettings, ChannelTarget, Message, SendResult
from app.channels.scrub import scrub, target_secrets

# Apprise's log lines name hosts and, at DEBUG, whole URLs (with their tokens). They are
# read from each call's result and scrubbed into SendResult.error; the library's logger
# itself stops at its own handlers and never reaches the bridge's log.
_APPRISE_LOGGER = logging.getLogger("apprise")

_NOTIFY_TYPES = {
    "incident.triggered": apprise.NotifyType.FAILURE,
    "incident.reopened": apprise.NotifyType.FAILURE,
    "incident.severity_raised": apprise.NotifyType.WARNING,
    "incident.acknowledged": apprise.NotifyType.INFO,
    "incident.resolved": apprise.NotifyType.SUCCESS,
    "incidents.digest": apprise.NotifyType.WARNING,
    "test": apprise.NotifyType.INFO,
}


def _keep_logs_private() -> None:
    _APPRISE_LOGGER.propagate = False


def plugin_for(url: str) -> apprise.NotifyBase | None:
    """The Apprise plugin a URL names, or None when Apprise does not recognise it."""
    _keep_logs_private()
    try:
        return apprise.Apprise.instantiate(url)
    except Exception:  # Apprise's parsers raise on some malformed input; that is "no".
        return None


def markdown_body(message: Message) -> str:
    """The text body with links as Markdown (Apprise converts for plain-text services)."""
    body = rendering.text_body(message)
    for text, href in rendering.links(message):
        body = body.replace(f"{text}: {href}", f"[{text}]({href})")
    return body


def send(target: ChannelTarget, message: Message, settings: ChannelSettings) -> SendResult:
    if not target.url:
        return SendResult("failed", error="the Apprise channel has no URL")
    plugin = plugin_for(target.url)
    if plugin is None:
        return SendResult("failed", error="Apprise does not recognise the channel's URL")
    timeout = settings.timeout_seconds
    plugin.socket_connect_timeout = timeout
    plugin.socket_read_timeout = timeout
    notifier = apprise.Apprise()
    notifier.add(plugin)
    with notifier.notify(
        body=markdown_body(message),
        title=rendering.headline(message),
        notify_type=_NOTIFY_TYPES.get(message.type, apprise.NotifyType.INFO),
        body_format=apprise.NotifyFormat.MARKDOWN,
        # The socket timeouts bound each request; this bounds a plugin that makes several.
        timeout=timeout * 2,
    ) as result:
        if result:
            return SendResult("sent")
        if result.status == apprise.AppriseResultStatus.TIMEOUT:
            return SendResult("retry", error=f"Apprise gave up after {timeout * 2:g} s (timed out)")
        reasons = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR")]
    detail = scrub(" ".join(reasons[-3:]), target_secrets(target))
    return SendResult(
        "retry",
        error="Apprise could not deliver" + (f": {detail}" if detail else " (no reason given)"),
    )
