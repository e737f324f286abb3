"""Sentry webhook signatures over the raw body bytes (SPEC 2)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest

from app.sentry.signatures import is_valid_signature, sign, signing_secret_index
from tests.support.payloads import load, sentry_bytes

SECRET = "9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c0b2d4f6e8a1c3e5b7d9f1a3c5e7b9d1f"

# Exactly as Sentry's encoder writes it: compact, with \uXXXX escapes (and a surrogate pair).
RAW_BODY = (
    b'{"action":"created","installation":{"uuid":"7a3c9f2e"},'
    b'"data":{"comment":"Kartenpr\\u00fcfung f\\u00e4llt aus \\ud83d\\udcb3"},'
    b'"actor":{"type":"user","id":1,"name":"J\\u00fcrgen M\\u00fcller"}}'
)


def test_sign_matches_rfc_4231_vector() -> None:
    # RFC 4231, test case 2.
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"

    assert sign("Jefe", b"what do ya want for nothing?") == expected


def test_sign_is_hmac_sha256_over_raw_bytes_with_unicode_escapes() -> None:
    expected = hmac.new(SECRET.encode("utf-8"), RAW_BODY, hashlib.sha256).hexdigest()

    signature = sign(SECRET, RAW_BODY)

    assert signature == expected
    assert signature == signature.lower()
    assert len(signature) == 64


def test_raw_body_is_ascii_with_escapes_as_sentry_sends_it() -> None:
    assert b"\\u00fc" in RAW_BODY
    assert json.loads(RAW_BODY)["data"]["comment"] == "Kartenprüfung fällt aus 💳"


def test_valid_signature_over_raw_bytes_is_accepted() -> None:
    assert is_valid_signature(SECRET, RAW_BODY, sign(SECRET, RAW_BODY)) is True


def test_upper_case_hex_signature_is_accepted() -> None:
    assert is_valid_signature(SECRET, RAW_BODY, sign(SECRET, RAW_BODY).upper()) is True


@pytest.mark.parametrize(
    "reencode",
    [
        lambda payload: json.dumps(payload, indent=2).encode("ascii"),
        lambda payload: json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(),
        lambda payload: json.dumps(payload, ensure_ascii=True).encode("ascii"),
    ],
    ids=["pretty-printed", "ensure-ascii-false", "default-separators"],
)
def test_signature_of_a_reserialised_body_is_rejected(reencode: Callable[[Any], bytes]) -> None:
    payload = json.loads(RAW_BODY)
    reserialised = reencode(payload)
    assert reserialised != RAW_BODY
    assert json.loads(reserialised) == payload

    # Sentry signed the bytes it sent; a re-encoding of the same JSON must not verify.
    assert is_valid_signature(SECRET, reserialised, sign(SECRET, RAW_BODY)) is False
    # And a signature over the re-encoding does not verify the bytes Sentry sent.
    assert is_valid_signature(SECRET, RAW_BODY, sign(SECRET, reserialised)) is False


def test_fixture_signed_over_sentry_encoding_fails_over_utf8_encoding() -> None:
    _, payload = load("integration_comment_created")
    wire = sentry_bytes(payload)
    utf8 = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    assert is_valid_signature(SECRET, wire, sign(SECRET, wire)) is True
    assert is_valid_signature(SECRET, utf8, sign(SECRET, wire)) is False


def test_signature_with_another_secret_is_rejected() -> None:
    assert is_valid_signature(SECRET, RAW_BODY, sign("another-secret", RAW_BODY)) is False


def test_signature_of_a_tampered_body_is_rejected() -> None:
    tampered = RAW_BODY.replace(b'"id":1', b'"id":2')

    assert is_valid_signature(SECRET, tampered, sign(SECRET, RAW_BODY)) is False


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "   ",
        "0" * 64,
        "deadbeef",
        "sha256=",
        "ünïcødé-signatüre",
        "💳" * 64,
        "\x00" * 64,
        "\ud800" * 10,  # a lone surrogate, which no encoder accepts strictly
        "g" * 64,
    ],
    ids=[
        "empty",
        "blank",
        "zeros",
        "short",
        "prefix-only",
        "non-ascii",
        "emoji",
        "nul",
        "lone-surrogate",
        "not-hex",
    ],
)
def test_wrong_or_garbage_signature_is_rejected_without_raising(signature: str) -> None:
    assert is_valid_signature(SECRET, RAW_BODY, signature) is False


def test_signature_truncated_by_one_character_is_rejected() -> None:
    assert is_valid_signature(SECRET, RAW_BODY, sign(SECRET, RAW_BODY)[:-1]) is False


def test_signature_prefixed_with_algorithm_is_rejected() -> None:
    assert is_valid_signature(SECRET, RAW_BODY, "sha256=" + sign(SECRET, RAW_BODY)) is False


def test_empty_body_signature_verifies_for_select_requests() -> None:
    # UI-component select requests sign the empty string.
    expected = hmac.new(SECRET.encode(), b"", hashlib.sha256).hexdigest()

    assert sign(SECRET, b"") == expected
    assert is_valid_signature(SECRET, b"", expected) is True


def test_signing_secret_index_names_the_first_secret_that_signed_the_body() -> None:
    body = b'{"action": "created"}'
    signature = sign("previous", body)

    assert signing_secret_index(["current", "previous"], body, signature) == 1
    assert signing_secret_index(["previous", "previous"], body, signature) == 0
    assert signing_secret_index([None, "", "previous"], body, signature) == 2
    assert signing_secret_index(["current", None], body, signature) is None
    assert signing_secret_index([], body, signature) is None
    assert signing_secret_index(["previous"], body + b" ", signature) is None
