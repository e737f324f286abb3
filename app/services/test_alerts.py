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


@dataclass(frozen=True)
class TestAlertResult:
    status: int
    answer: dict[str, Any]


def sample_issue_payload(integration_id: str, now: datetime) -> dict[str, Any]:
    """An `issue.created` webhook shaped as Sentry sends it; one test issue per integration."""
    issue_id = f"bridge-test-{integration_id[:8]}"
    seen = now.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {
        "action": "created",
        "installation": {"uuid": "00000000-0000-4000-8000-000000000000"},
        "data": {
            "issue": {
                "id": issue_id,
                "shortId": "BRIDGE-TEST",
                "title": "Test alert from the Sentry Incident Bridge (safe to resolve)",
                "culprit": "bridge.test_alert",
                "level": "warning",
                "status": "unresolved",
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
    response = http.post(webhook_url, data=body, headers=headers, timeout=TIMEOUT_SECONDS)
    try:
        answer = response.json()
    except ValueError:
        answer = {"error": {"message": response.text[:200]}}
    return TestAlertResult(response.status_code, answer if isinstance(answer, dict) else {})
