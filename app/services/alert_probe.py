"""send_test_alert: a correctly signed sample delivery through the bridge's real endpoint."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from app.sentry.signatures import sign

TIMEOUT_SECONDS = 5


# Bind addresses that mean "every interface": the loopback one is among them.
_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::", "[::]"})  # noqa: S104 - compared, never bound


@dataclass(frozen=True)
class TestAlertResult:
    """The HTTP status only: the body is whatever the endpoint answered, and the endpoint
    need not be the bridge (a proxy, or a URL someone configured), so it is not shown."""

    status: int


def own_webhook_base(public_base_url: str | None, host: str, port: int) -> str:
    """Where the test alert goes: the configured public URL, else this server itself.

    Never the request's Host header: whoever sends the request chooses that, and the
    button would make the bridge POST a signed body to any address they name.
    """
    if public_base_url:
        return public_base_url.rstrip("/")
    address = "127.0.0.1" if host in _ANY_ADDRESS or host == "localhost" else host
    if ":" in address and not address.startswith("["):
        address = f"[{address}]"
    return f"http://{address}:{port}"


def sample_issue_payload(integration_id: str, now: datetime) -> dict[str, Any]:
    """An `issue.unresolved` webhook shaped as Sentry sends it; one test issue per integration.

    Not `issue.created`: Sentry sends that once per issue, so the bridge never lets a
    repeated one reopen a resolved incident (SPEC 4.1), and the second test alert after
    resolving the first would change nothing. `unresolved` opens, adds to or reopens.
    """
    issue_id = f"bridge-test-{integration_id[:8]}"
    seen = now.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {
        "action": "unresolved",
        "installation": {"uuid": "00000000-0000-4000-8000-000000000000"},
        "data": {
            "issue": {
                "id": issue_id,
                "shortId": "BRIDGE-TEST",
                "title": "Test alert from the Sentry Incident Bridge (safe to resolve)",
                "culprit": "bridge.test_alert",
                "level": "warning",
                "status": "unresolved",
                "substatus": "ongoing",
                "project": {"id": "0", "name": "Bridge test", "slug": "bridge-test"},
                "firstSeen": seen,
                "lastSeen": seen,
                "count": "1",
                "userCount": 0,
            }
        },
        "actor": {"type": "application", "id": "sentry", "name": "Sentry"},
    }


def send_test_alert(
    http: requests.Session,
    webhook_url: str,
    integration_id: str,
    secret: str | None,
    now: datetime,
) -> TestAlertResult:
    """POST the sample over HTTP, encoded and signed exactly as Sentry would."""
    body, headers = sample_delivery(integration_id, secret, now)
    # No redirects: a 3xx to another host must not carry the signed body there.
    response = http.post(
        webhook_url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
    )
    response.close()
    return TestAlertResult(response.status_code)


def sample_delivery(
    integration_id: str, secret: str | None, now: datetime
) -> tuple[bytes, dict[str, str]]:
    """The sample's body and headers, encoded and signed exactly as Sentry would."""
    body = json.dumps(
        sample_issue_payload(integration_id, now), separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")
    headers = {
        "Content-Type": "application/json",
        "Request-ID": uuid.uuid4().hex,
        "Sentry-Hook-Resource": "issue",
        "Sentry-Hook-Timestamp": str(int(time.time())),
        "User-Agent": "sentry-incident-bridge/test-alert",
    }
    if secret is not None:
        headers["Sentry-Hook-Signature"] = sign(secret, body)
    return body, headers
