"""The delivery inspector blanks out credentials and otherwise shows bodies as sent."""

from __future__ import annotations

import json

from app.domain.redaction import REDACTED, redacted_body
from tests.support.payloads import load, sentry_bytes


def test_installation_grant_code_is_blanked_out() -> None:
    _resource, payload = load("integration_installation_created")
    code = payload["data"]["installation"]["code"]
    shown = redacted_body(sentry_bytes(payload))

    assert code not in shown
    document = json.loads(shown)
    assert document["data"]["installation"]["code"] == REDACTED
    assert document["data"]["installation"]["uuid"] == payload["data"]["installation"]["uuid"]


def test_nested_and_listed_credentials_are_blanked_out() -> None:
    body = json.dumps(
        {"a": [{"token": "t0k3n"}, {"refreshToken": "r3fr3sh"}], "b": {"Password": "pw"}}
    ).encode()

    shown = redacted_body(body)

    for secret in ("t0k3n", "r3fr3sh", '"pw"'):
        assert secret not in shown
    assert shown.count(REDACTED) == 3


def test_bodies_without_credentials_are_shown_byte_for_byte() -> None:
    _resource, payload = load("integration_issue_created")
    raw = sentry_bytes(payload)

    assert redacted_body(raw) == raw.decode()
    assert redacted_body(b"not json \xff") == "not json \ufffd"


def test_credentials_in_a_truncated_body_are_blanked_out() -> None:
    # A refused delivery keeps only its first 8 KiB: no longer JSON, still a grant code.
    prefix = b'{"action":"created","data":{"installation":{"uuid":"u1"}},"code":"grant-123","x":"'

    shown = redacted_body(prefix + b"a" * 20)

    assert "grant-123" not in shown
    assert '"code":"[redacted]"' in shown
    assert shown.startswith('{"action":"created"')
