"""Signed Sentry `issue.created` deliveries, serialised the way Sentry sends them.

The template is tests/fixtures/sentry/integration_issue_created.json (an integration-platform
webhook). Each body is compact JSON with `\\uXXXX` escapes (Sentry's encoder) and is signed
with HMAC-SHA256 over those exact bytes. Request-IDs are not in the body, so the load
generators add a fresh one to every request.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "tests" / "fixtures" / "sentry" / "integration_issue_created.json"
RESOURCE = "issue"
# Sentry's project/organisation of the template; issue ids are varied from here.
ISSUE_ID_BASE = 4_512_000_000


@dataclass(frozen=True)
class SignedBody:
    issue_id: int
    body: bytes
    signature: str


def sentry_bytes(payload: Any) -> bytes:
    """Sentry's integration-platform encoding: compact JSON with \\uXXXX escapes."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _template() -> dict[str, Any]:
    document = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    assert document["resource"] == RESOURCE
    body: dict[str, Any] = document["body"]
    return body


def issue_payload(
    template: dict[str, Any], issue_id: int, variant: int, seen: datetime
) -> dict[str, Any]:
    """The template as Sentry would send it for another issue (and its n-th event)."""
    payload = copy.deepcopy(template)
    issue = payload["data"]["issue"]
    short = f"PAYMENTS-API-{issue_id % 100_000:X}"
    issue["id"] = str(issue_id)
    issue["shortId"] = short
    issue["url"] = f"https://sentry.io/api/0/organizations/acme-gmbh/issues/{issue_id}/"
    issue["web_url"] = f"https://acme-gmbh.sentry.io/issues/{issue_id}/"
    issue["title"] = f"{issue['title']} #{issue_id % 1000}"
    issue["level"] = ("error", "fatal", "warning", "error")[issue_id % 4]
    issue["count"] = str(variant + 1)
    issue["userCount"] = 1 + variant // 2
    issue["firstSeen"] = seen.isoformat(timespec="microseconds")
    issue["lastSeen"] = (seen + timedelta(seconds=variant)).isoformat(timespec="microseconds")
    return payload


def signed_bodies(
    secret: str, issues: int, variants: int, issue_base: int = ISSUE_ID_BASE
) -> Iterator[SignedBody]:
    """`issues` distinct issues, `variants` bodies each, interleaved: issue 0..n-1, again..."""
    template = _template()
    seen = datetime.now(UTC).replace(microsecond=482_000) - timedelta(minutes=5)
    for variant in range(variants):
        for offset in range(issues):
            issue_id = issue_base + offset
            body = sentry_bytes(issue_payload(template, issue_id, variant, seen))
            yield SignedBody(issue_id, body, sign(secret, body))


def write_wrk_file(path: Path, bodies: Iterator[SignedBody]) -> int:
    """One `<signature> <body>` line per body, for bench/ingest.lua; returns the count."""
    count = 0
    with path.open("wb") as out:
        for item in bodies:
            assert b"\n" not in item.body
            out.write(item.signature.encode("ascii") + b" " + item.body + b"\n")
            count += 1
    return count
