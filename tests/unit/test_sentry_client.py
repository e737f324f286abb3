"""The Sentry API client on its own, against `responses` (no network)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
import responses

from app.sentry.client import SentryClient
from app.sentry.errors import (
    SentryBadResponse,
    SentryGrantRejected,
    SentryRateLimited,
    SentryRequestRefused,
    SentryResourceMissing,
    SentryUnauthorized,
    SentryUnavailable,
)

BASE = "https://sentry.example.test"
ISSUE = f"{BASE}/api/0/organizations/acme/issues/42/"
NOW = 1_800_000_000.0


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(waits: list[float]) -> SentryClient:
    return SentryClient(
        BASE,
        timeout=7,
        connect_timeout=2,
        max_retries=3,
        backoff_seconds=0.5,
        max_wait_seconds=30,
        sleep=waits.append,
        clock=lambda: NOW,
    )


@responses.activate
def test_every_call_carries_a_timeout_and_the_bearer_token(client: SentryClient) -> None:
    responses.get(ISSUE, json={"id": "42"})

    assert client.get_issue("tok-1", "acme", "42") == {"id": "42"}

    call = responses.calls[0]
    assert call.request.req_kwargs["timeout"] == (2, 7)
    assert call.request.headers["Authorization"] == "Bearer tok-1"


@responses.activate
def test_path_segments_from_payloads_cannot_climb_out_of_the_issue_path(
    client: SentryClient,
) -> None:
    responses.get(f"{BASE}/api/0/organizations/acme/issues/..%2F..%2Fusers/", json={})

    client.get_issue("tok", "acme", "../../users")

    assert responses.calls[0].request.url.endswith("/issues/..%2F..%2Fusers/")


@responses.activate
@pytest.mark.parametrize(("org", "issue"), [("acme", ".."), ("acme", "."), ("..", "1"), ("", "1")])
def test_dot_segments_never_reach_sentry(client: SentryClient, org: str, issue: str) -> None:
    # Sent as is, `/organizations/acme/issues/../` is folded into `/organizations/acme/`
    # on the way (requests and urllib3 both normalise dot segments): another resource.
    responses.get(f"{BASE}/api/0/organizations/acme/", json={"slug": "acme"})

    with pytest.raises(SentryResourceMissing):
        client.get_issue("tok", org, issue)

    assert len(responses.calls) == 0


@responses.activate
def test_429_waits_for_retry_after_then_succeeds(client: SentryClient, waits: list[float]) -> None:
    responses.get(ISSUE, status=429, headers={"Retry-After": "3"}, json={})
    responses.get(ISSUE, json={"id": "42"})

    assert client.get_issue("tok", "acme", "42")["id"] == "42"

    assert waits == [3.0]


@responses.activate
def test_429_without_retry_after_waits_until_the_rate_limit_reset(
    client: SentryClient, waits: list[float]
) -> None:
    responses.get(ISSUE, status=429, headers={"X-Sentry-Rate-Limit-Reset": str(NOW + 4.5)})
    responses.get(ISSUE, json={"id": "42"})

    client.get_issue("tok", "acme", "42")

    assert waits == [4.5]


@responses.activate
def test_429_longer_than_the_bridge_waits_in_place_raises_with_the_retry_time(
    client: SentryClient, waits: list[float]
) -> None:
    responses.get(ISSUE, status=429, headers={"X-Sentry-Rate-Limit-Reset": str(NOW + 120)})

    with pytest.raises(SentryRateLimited) as raised:
        client.get_issue("tok", "acme", "42")

    assert raised.value.retry_after == 120
    assert waits == []
    assert len(responses.calls) == 1


@responses.activate
def test_5xx_is_retried_with_exponential_backoff(client: SentryClient, waits: list[float]) -> None:
    responses.get(ISSUE, status=502)
    responses.get(ISSUE, status=503)
    responses.get(ISSUE, json={"id": "42"})

    assert client.get_issue("tok", "acme", "42")["id"] == "42"

    assert waits == [0.5, 1.0]


@responses.activate
def test_5xx_after_every_retry_is_sentry_unavailable(
    client: SentryClient, waits: list[float]
) -> None:
    responses.get(ISSUE, status=500)

    with pytest.raises(SentryUnavailable):
        client.get_issue("tok", "acme", "42")

    assert len(responses.calls) == 4
    assert waits == [0.5, 1.0, 2.0]


@responses.activate
def test_a_read_timeout_is_retried_for_reads(client: SentryClient, waits: list[float]) -> None:
    responses.get(ISSUE, body=requests.ReadTimeout("slow"))
    responses.get(ISSUE, json={"id": "42"})

    assert client.get_issue("tok", "acme", "42")["id"] == "42"
    assert waits == [0.5]


@responses.activate
def test_a_read_timeout_is_not_retried_for_a_token_refresh(client: SentryClient) -> None:
    # The refresh may have happened; a repeat would present an already rotated token.
    responses.post(
        f"{BASE}/api/0/sentry-app-installations/inst-1/authorizations/",
        body=requests.ReadTimeout("slow"),
    )

    with pytest.raises(SentryUnavailable):
        client.refresh("inst-1", "refresh-secret", "cid", "csecret")

    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, SentryUnauthorized),
        (404, SentryResourceMissing),
        (403, SentryRequestRefused),
        (400, SentryRequestRefused),
    ],
)
@responses.activate
def test_client_errors_become_the_bridges_own_exceptions(
    client: SentryClient, status: int, error: type[Exception]
) -> None:
    responses.get(ISSUE, status=status, json={"detail": "nope"})

    with pytest.raises(error):
        client.get_issue("tok", "acme", "42")
    assert len(responses.calls) == 1


@responses.activate
def test_a_body_that_is_not_json_is_a_bad_response(client: SentryClient) -> None:
    responses.get(ISSUE, body="<html>oops</html>", status=200)

    with pytest.raises(SentryBadResponse):
        client.get_issue("tok", "acme", "42")


@responses.activate
def test_grant_exchange_returns_the_pair_and_its_expiry(client: SentryClient) -> None:
    responses.post(
        f"{BASE}/api/0/sentry-app-installations/inst-1/authorizations/",
        status=201,
        json={"token": "t-new", "refreshToken": "r-new", "expiresAt": "2026-11-24T01:00:00Z"},
    )

    grant = client.exchange_grant("inst-1", "code-1", "cid", "csecret")

    assert grant.token == "t-new"
    assert grant.refresh_token == "r-new"
    assert grant.expires_at == datetime(2026, 11, 24, 1, tzinfo=UTC)
    assert "t-new" not in repr(grant) and "r-new" not in repr(grant)
    sent = responses.calls[0].request.body
    assert b'"grant_type": "authorization_code"' in sent
    assert b'"code": "code-1"' in sent


@responses.activate
def test_a_refused_grant_names_the_condition_but_not_the_code_or_secret(
    client: SentryClient,
) -> None:
    responses.post(
        f"{BASE}/api/0/sentry-app-installations/inst-1/authorizations/",
        status=401,
        json={"detail": "Invalid grant"},
    )

    with pytest.raises(SentryGrantRejected) as raised:
        client.exchange_grant("inst-1", "code-secret-1", "cid", "client-secret-1")

    assert "code-secret-1" not in raised.value.message
    assert "client-secret-1" not in raised.value.message
