"""Is a channel target usable, and how it may be shown once it has been created."""

from __future__ import annotations

import re
from email.utils import parseaddr
from urllib.parse import urlsplit

from app.channels import apprise as apprise_channel
from app.channels import webhook
from app.channels.base import CHANNEL_KINDS, ChannelTarget
from app.domain.errors import InvalidInput

# Events v2 integration keys are 32 characters (service keys hex-like, ruleset keys
# start with R); letters and digits only.
_ROUTING_KEY = re.compile(r"[A-Za-z0-9]{32}")
# Deliberately plain: one address, no display name, nothing that could smuggle a header.
_ADDRESS = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+")
_SHOWN_CHARS = 4


def _http_url(url: str | None, what: str) -> None:
    if not url:
        raise InvalidInput(f"a {what} channel needs a URL", field="url")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise InvalidInput(f"the {what} URL is not a URL", field="url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"the {what} URL must be an http:// or https:// URL", field="url")


def _recipients(recipients: tuple[str, ...]) -> None:
    if not recipients:
        raise InvalidInput("an email channel needs at least one address", field="recipients")
    for address in recipients:
        if not _ADDRESS.fullmatch(address) or parseaddr(address)[1] != address:
            raise InvalidInput(
                f"{address[:100]!r} is not a plain email address", field="recipients"
            )


def validate_target(target: ChannelTarget) -> None:
    """InvalidInput (422) with a secret-free message when a target is unusable."""
    if target.kind not in CHANNEL_KINDS:
        raise InvalidInput(
            f"unknown channel kind {target.kind[:40]!r}; one of {', '.join(CHANNEL_KINDS)}",
            field="kind",
        )
    if target.kind == "webhook":
        _http_url(target.url, "webhook")
        if not target.secret:
            raise InvalidInput("a webhook channel needs a signing secret", field="secret")
        try:
            webhook.secret_key(target.secret)
        except ValueError as error:
            raise InvalidInput(f"the signing secret is unusable: {error}", field="secret") from None
    elif target.kind == "slack":
        _http_url(target.url, "Slack incoming-webhook")
    elif target.kind == "email":
        _recipients(target.recipients)
    elif target.kind == "pagerduty":
        if not target.routing_key or not _ROUTING_KEY.fullmatch(target.routing_key):
            raise InvalidInput(
                "a PagerDuty routing key is the 32-character integration key of an "
                "Events API v2 integration",
                field="routing_key",
            )
    elif target.kind == "apprise" and (
        not target.url or apprise_channel.plugin_for(target.url) is None
    ):
        raise InvalidInput("Apprise does not recognise this URL", field="url")


def generate_webhook_secret() -> str:
    """A new Standard Webhooks secret: 'whsec_' + base64 of 32 random bytes."""
    return webhook.generate_secret()


def _tail(value: str) -> str:
    return value[-_SHOWN_CHARS:] if len(value) > 3 * _SHOWN_CHARS else ""


def _mask_url(url: str | None) -> str:
    if not url:
        return "(no URL)"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unreadable URL)"
    if parts.scheme in ("http", "https") and parts.hostname:
        rest = parts.path + (f"?{parts.query}" if parts.query else "")
        return f"{parts.scheme}://{parts.hostname}/…/{_tail(rest)}".rstrip("/")
    # Other schemes (Apprise) often carry the token as the "host": show only the scheme.
    rest = url.split("://", 1)[-1]
    return f"{parts.scheme or '?'}://…/{_tail(rest)}".rstrip("/")


def mask(target: ChannelTarget) -> str:
    """What may be shown after creation; never the secret part of a URL or key."""
    if target.kind == "email":
        if not target.recipients:
            return "(no recipients)"
        others = len(target.recipients) - 1
        return target.recipients[0] + (f", +{others}" if others else "")
    if target.kind == "pagerduty":
        return (
            f"routing key …{_tail(target.routing_key or '')}" if target.routing_key else "(no key)"
        )
    return _mask_url(target.url)
