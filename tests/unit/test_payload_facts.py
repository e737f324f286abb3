"""What a Sentry payload says of the issue or event, read without enrichment (issue 16):
culprit, environment, release, platform, tags, Sentry's counts, short id and link."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from app.domain.alerts import (
    MAX_CULPRIT_LENGTH,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    TEST_ISSUE_PREFIX,
    read_alert,
)
from app.services.alert_probe import sample_issue_payload
from tests.support.payloads import load

ISSUE_CULPRIT = "payments.service in charge_card"
RELEASE = "payments-api@2.14.1"


def read(name: str) -> Any:
    resource, body = load(name)
    return read_alert(body, resource)


@pytest.mark.parametrize(
    ("name", "count", "user_count"),
    [
        ("integration_issue_created", 1, 1),
        ("integration_issue_unresolved", 43, 18),
        ("integration_issue_resolved", 42, 17),
        ("integration_issue_assigned", 12, 9),
        ("integration_activity_alert_triggered", None, None),  # a note, no facts
    ],
)
def test_issue_webhooks_say_culprit_platform_counts_and_short_id(
    name: str, count: int | None, user_count: int | None
) -> None:
    alert = read(name)

    assert alert.count == count
    assert alert.user_count == user_count
    if count is not None:
        assert alert.culprit == ISSUE_CULPRIT
        assert alert.platform == "python"
        assert alert.short_id == "PAYMENTS-API-3F"
        # An issue spans environments and releases: the issue payload names neither.
        assert alert.environment is None and alert.release is None and alert.tags == {}


def test_the_issue_link_is_kept_from_an_issue_webhook() -> None:
    alert = read("integration_issue_created")

    assert alert.issue_url == "https://acme-gmbh.sentry.io/issues/4512345678/"


@pytest.mark.parametrize(
    "name",
    [
        "integration_event_alert_triggered",
        "integration_event_alert_triggered_2021",
        "integration_error_created",
        "integration_error_created_2021",
    ],
)
def test_event_alerts_and_errors_say_environment_release_tags_and_culprit(name: str) -> None:
    alert = read(name)

    assert alert.culprit == ISSUE_CULPRIT
    assert alert.environment == "production"
    assert alert.release == RELEASE
    assert alert.platform == "python"
    assert alert.tags["environment"] == "production"
    assert alert.tags["handled"] == "no"
    # Sentry's counts are the issue's: an event payload does not carry them.
    assert alert.count is None and alert.user_count is None
    assert alert.issue_url is not None and "/issues/4512345678/" in alert.issue_url


def test_the_legacy_plugin_says_culprit_environment_release_and_tags() -> None:
    alert = read("legacy_webhooks_plugin")

    assert alert.culprit == "payments.jp.service in capture"
    assert alert.environment == "production"
    assert alert.release == RELEASE
    assert alert.platform == "python"
    assert alert.tags["logger"] == "payments.jp"
    assert (
        alert.issue_url == "https://acme-gmbh.sentry.io/issues/4512399001/?referrer=webhooks_plugin"
    )


def test_sentry_9s_plugin_names_the_culprit_only_beside_the_event() -> None:
    alert = read("legacy_webhooks_plugin_sentry9")

    assert alert.culprit == "payments.refunds in issue_refund"
    assert alert.environment == "production"  # from the tags: no event.environment then
    assert alert.release is None
    assert alert.tags["sentry:user"] == "id:cust_40127"


def test_the_opsknight_forms_say_what_they_carry() -> None:
    event = read("opsknight_event")
    issue = read("opsknight_issue")

    assert event.environment == "production"
    assert event.release == RELEASE  # only in the tags dict
    assert event.tags["region"] == "ap-northeast-1"
    assert issue.culprit == "payments.transfer in submit"
    assert issue.short_id == "PAYMENTS-API-4K"
    assert issue.issue_url == "https://acme-gmbh.sentry.io/issues/4512400777/"


@pytest.mark.parametrize(
    "name", ["integration_metric_alert_critical", "integration_metric_alert_resolved"]
)
def test_metric_alerts_carry_none_of_them(name: str) -> None:
    alert = read(name)

    assert (alert.culprit, alert.release, alert.platform, alert.count, alert.short_id) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert alert.tags == {}


def test_values_are_bounded_and_junk_is_not_a_count() -> None:
    _, body = load("integration_issue_created")
    issue = body["data"]["issue"]
    issue.update(culprit="x" * 5000, count="12 apples", userCount=True, platform="p" * 500)
    alert = read_alert(body, "issue")

    assert alert.culprit == "x" * MAX_CULPRIT_LENGTH
    assert alert.count is None and alert.user_count is None
    assert alert.platform == "p" * 64

    _, event_body = load("integration_event_alert_triggered")
    event = event_body["data"]["event"]
    event["tags"] = [[f"k{n}", "v" * 900] for n in range(500)] + [["nul\x00", "a\x00b"]]
    event["release"] = "r" * 9000
    alert = read_alert(event_body, "event_alert")

    assert len(alert.tags) == MAX_TAGS
    assert all(len(value) == MAX_TAG_LENGTH for value in alert.tags.values())
    assert alert.release is not None and len(alert.release) == 255


def test_a_count_as_sentry_sends_it_beyond_32_bits_is_kept() -> None:
    _, body = load("integration_issue_created")
    body["data"]["issue"]["count"] = "4294967297"
    assert read_alert(body, "issue").count == 4_294_967_297


def test_the_bridges_test_alert_is_recognised_and_nothing_else_is() -> None:
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    test_alert = read_alert(sample_issue_payload("abcdefgh12345", now), "issue")

    assert test_alert.is_test
    assert test_alert.issue_id is not None and test_alert.issue_id.startswith(TEST_ISSUE_PREFIX)
    assert test_alert.short_id == "BRIDGE-TEST"
    assert not read("integration_issue_created").is_test
    assert not read("legacy_webhooks_plugin").is_test
