"""What a Sentry delivery tells an incident, and when (app/domain/sentry_news.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from app.domain.alerts import Alert, Format, Intent
from app.domain.lifecycle import Decision, Step
from app.domain.sentry_news import news_of, news_time

RECEIVED = datetime(2026, 12, 1, 9, 0, 30, tzinfo=UTC)
HOOK_SECOND = "1796115600"  # 2026-12-01 09:00:00 UTC


def alert(**changes: object) -> Alert:
    base = Alert(Format.INTEGRATION, "issue", "created", Intent.TRIGGER, dedup_key="sentry-1")
    return replace(base, **changes)  # type: ignore[arg-type]


def test_the_hook_timestamp_counts_to_the_end_of_its_second() -> None:
    at = news_time(alert(intent=Intent.RESOLVE), HOOK_SECOND, RECEIVED)

    assert at == datetime(2026, 12, 1, 9, 0, 0, 999_999, tzinfo=UTC)


def test_an_event_is_never_newer_than_the_event_its_payload_names() -> None:
    occurred = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)

    assert news_time(alert(occurred_at=occurred), HOOK_SECOND, RECEIVED) == occurred


def test_without_a_hook_timestamp_the_payload_time_is_used_and_never_the_future() -> None:
    occurred = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

    assert news_time(alert(occurred_at=occurred), None, RECEIVED) == occurred
    assert news_time(alert(occurred_at=RECEIVED + timedelta(hours=1)), None, RECEIVED) == RECEIVED
    assert news_time(alert(), None, RECEIVED) == RECEIVED


def test_news_carries_only_the_sentry_links_the_delivery_names() -> None:
    news = news_of(Decision(Step.ADD_EVENT, matched=True), alert(issue_id="42", project="shop"))

    assert dict(news.links) == {"sentry_issue_id": "42", "sentry_project": "shop"}
    assert news.names_project is False


def test_news_names_the_project_when_the_delivery_gives_slug_and_name() -> None:
    decision = Decision(Step.ADD_EVENT, matched=True)

    assert news_of(decision, alert(project="shop", project_name="Shop")).names_project is True
