"""Sentry payload fixtures, serialised and signed the way Sentry sends them.

Integration-platform webhooks are written by Sentry's encoder: compact separators and
ASCII-only output (`\\uXXXX` escapes). The legacy WebHooks plugin posts through
`requests`' json= argument: default separators, also ASCII-only. Signatures are computed
over these exact bytes and never over a re-encoding.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sentry"


def fixture_names() -> list[str]:
    return sorted(path.stem for path in FIXTURES.glob("*.json"))


def load(name: str) -> tuple[str | None, dict[str, Any]]:
    """(Sentry-Hook-Resource or None, a fresh copy of the payload) of one fixture."""
    document = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return document["resource"], copy.deepcopy(document["body"])


def sentry_bytes(payload: Any) -> bytes:
    """Sentry's integration-platform encoding: compact JSON with \\uXXXX escapes."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def plugin_bytes(payload: Any) -> bytes:
    """The legacy WebHooks plugin's encoding (requests' json=): spaced, \\uXXXX escapes."""
    return json.dumps(payload, ensure_ascii=True).encode("ascii")


def seen_at(payload: dict[str, Any], epoch: float) -> dict[str, Any]:
    """An issue envelope as Sentry sends it for a later event: `lastSeen` moved (and with
    it the signed bytes; a body re-sent unchanged is a replay, not a new event)."""
    moment = datetime.fromtimestamp(epoch, UTC)
    payload["data"]["issue"]["lastSeen"] = moment.isoformat().replace("+00:00", "Z")
    return payload


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    """One HTTP request as Sentry would make it."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def build(
    name_or_payload: str | dict[str, Any],
    *,
    resource: str | None = None,
    secret: str | None = None,
    request_id: str | None = None,
    timestamp: int | None = None,
) -> Delivery:
    """A delivery of a fixture (by name) or of a payload, with Sentry's headers."""
    if isinstance(name_or_payload, str):
        fixture_resource, payload = load(name_or_payload)
        resource = resource or fixture_resource
        is_plugin = name_or_payload.startswith(("legacy_", "opsknight_"))
    else:
        payload = name_or_payload
        is_plugin = resource is None
    body = plugin_bytes(payload) if is_plugin else sentry_bytes(payload)
    headers = {"Content-Type": "application/json"}
    if resource is not None:
        headers["Request-ID"] = request_id or uuid.uuid4().hex
        headers["Sentry-Hook-Resource"] = resource
        headers["Sentry-Hook-Timestamp"] = str(timestamp if timestamp else int(time.time()))
    elif request_id is not None:
        headers["Request-ID"] = request_id
    if secret is not None:
        headers["Sentry-Hook-Signature"] = sign(secret, body)
    return Delivery(body=body, headers=headers)


def issue_event(
    number: int, *, secret: str | None = None, request_id: str | None = None
) -> Delivery:
    """The `issue.created` fixture as Sentry would send it `number` seconds after its
    lastSeen: a distinct event, so distinct signed bytes."""
    resource, payload = load("integration_issue_created")
    seen = parse_iso(payload["data"]["issue"]["lastSeen"]).timestamp() + number
    return build(seen_at(payload, seen), resource=resource, secret=secret, request_id=request_id)


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
