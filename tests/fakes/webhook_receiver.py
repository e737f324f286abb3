"""A generic HTTP receiver on loopback: the signed-webhook endpoint, a Slack incoming
webhook, and the target of Apprise's json:// plugin.

By default it answers 200 `ok` as text, which is what Slack's incoming webhooks answer
(api.slack.com/messaging/webhooks); Slack's refusals are short text codes with a 4xx
(`invalid_payload` 400, `no_service` / `channel_not_found` 404, `action_prohibited` 403)
and 429 with Retry-After, which tests program with `respond`. `verify_standard_webhook`
checks a request's signature independently of app/channels, from the Standard Webhooks
spec (standardwebhooks.com): HMAC-SHA256 over `{id}.{timestamp}.{body}` keyed with the
base64-decoded secret after `whsec_`, one or more space-separated `v1,<base64>` values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Response

from tests.fakes.loopback import LoopbackServer, ReceivedRequest, RecordingApp, serve


@dataclass
class WebhookReceiver:
    running: LoopbackServer

    @property
    def requests(self) -> list[ReceivedRequest]:
        return list(self.running.app.requests)

    def url(self, path: str = "/hook") -> str:
        return self.running.base_url + path

    @property
    def port(self) -> int:
        return self.running.server.server_port

    def respond(
        self,
        status: int,
        body: str | bytes | dict[str, Any] = b"",
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` requests like this, then normally again."""
        self.running.app.script.add(status, body, headers=headers, times=times, delay=delay)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        return self.running.app.wait_for(count, timeout)

    def reset(self) -> None:
        self.running.app.requests.clear()
        self.running.app.script.clear()

    def stop(self) -> None:
        self.running.stop()


def _ok(_request: ReceivedRequest) -> Response:
    return Response("ok", status=200, content_type="text/html")


def start_webhook_receiver() -> WebhookReceiver:
    return WebhookReceiver(serve(RecordingApp(_ok), "fake-webhook-receiver"))


def verify_standard_webhook(
    secret: str, request: ReceivedRequest, *, now: float | None = None, tolerance: int = 300
) -> bool:
    """True when the request carries a valid, fresh Standard Webhooks signature."""
    webhook_id = request.headers.get("webhook-id")
    timestamp = request.headers.get("webhook-timestamp")
    signatures = request.headers.get("webhook-signature")
    if not (webhook_id and timestamp and signatures and timestamp.isdigit()):
        return False
    if abs((now if now is not None else time.time()) - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    content = webhook_id.encode() + b"." + timestamp.encode() + b"." + request.body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False
