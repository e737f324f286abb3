"""STUB until merge (issue 14): the adapters helper's app/channels/__init__.py replaces this.

Same names as the agreed interface; `send` is not implemented here (the core's tests
inject their own send callable).
"""

import base64
import secrets

from app.channels.base import ChannelSettings, ChannelTarget, Message, SendResult
from app.domain.errors import InvalidInput


def send(target: ChannelTarget, message: Message, settings: ChannelSettings) -> SendResult:
    """Send one message through the adapter of target.kind (not in this stub)."""
    raise NotImplementedError("the channel adapters arrive with the adapters helper's branch")


def validate_target(target: ChannelTarget) -> None:
    """Raise InvalidInput when a target is unusable (the stub checks only the basics)."""
    if target.kind in ("webhook", "slack", "apprise") and not target.url:
        raise InvalidInput(f"A {target.kind} channel needs a URL.", fields={"url": ["required"]})
    if target.kind == "email" and not target.recipients:
        raise InvalidInput("An email channel needs recipients.", fields={"to": ["required"]})
    if target.kind == "pagerduty" and not target.routing_key:
        raise InvalidInput(
            "A pagerduty channel needs a routing key.", fields={"routing_key": ["required"]}
        )


def generate_webhook_secret() -> str:
    """A new Standard Webhooks secret: 'whsec_' + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def mask(target: ChannelTarget) -> str:
    """What may be shown after creation; never the full secret part."""
    if target.recipients:
        extra = f", +{len(target.recipients) - 1}" if len(target.recipients) > 1 else ""
        return target.recipients[0] + extra
    if target.routing_key:
        return f"routing key …{target.routing_key[-4:]}"
    if target.url:
        head = target.url.split("//", 1)[-1].split("/", 1)[0]
        return f"{target.url.split('//', 1)[0]}//{head}/…"
    return "…"
