"""What the bridge keeps of a Sentry issue and its latest event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.sentry.enrichment import summarise, top_in_app_frame

API_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sentry_api"


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((API_FIXTURES / f"{name}.json").read_text())
    return document


def test_summary_keeps_counts_users_times_culprit_release_tags_and_permalink() -> None:
    summary = summarise(fixture("issue"), fixture("latest_event"))

    assert summary["event_count"] == 1284  # Sentry sends count as a string
    assert summary["user_count"] == 311
    assert summary["first_seen"] == "2026-11-23T08:12:44.120000Z"
    assert summary["last_seen"] == "2026-11-23T10:02:13.004000Z"
    assert summary["culprit"] == "app/checkout/cart.js in computeTotal"
    assert summary["release"] == "checkout@2026.11.3"
    assert summary["permalink"] == "https://acme-gmbh.sentry.io/issues/4507219923/"
    assert summary["tags"] == {
        "environment": "production",
        "browser": "Chrome 131",
        "url": "https://shop.example.com/checkout",
    }
    assert summary["project"] == "checkout"
    assert summary["latest_event_id"] == "9f1c2d3e4b5a69788766554433221100"


def test_top_in_app_frame_is_the_innermost_frame_of_our_own_code() -> None:
    frame = top_in_app_frame(fixture("latest_event"))

    assert frame == {
        "filename": "app/checkout/cart.js",
        "module": "app/checkout/cart",
        "function": "computeTotal",
        "line": 17,
        "context_line": "return cart.items.reduce(sum, 0);",
    }


def test_without_an_event_the_issue_alone_is_summarised_with_its_top_tags() -> None:
    summary = summarise(fixture("issue"), None)

    assert summary["release"] == "checkout@2026.11.3"  # the issue's lastRelease
    assert summary["tags"] == {"browser": "Chrome 131"}
    assert "top_in_app_frame" not in summary


def test_odd_shapes_are_left_out_rather_than_guessed() -> None:
    summary = summarise(
        {"id": 7, "count": "many", "userCount": True, "tags": "nope", "project": []},
        {"entries": [{"type": "exception", "data": {"values": [{"stacktrace": None}]}}]},
    )

    assert summary == {"issue_id": "7"}


def test_summary_text_drops_nul_and_lone_surrogates_like_every_sentry_reader() -> None:
    # The summary is stored in PostgreSQL text (no NUL) and served as UTF-8 (no lone
    # surrogate): the same guarded reader as the webhook's, not a copy without the guards.
    issue = {**fixture("issue"), "title": "Type\x00Error \ud800here", "culprit": "\x00"}
    summary = summarise(issue, None)

    assert summary["title"] == "TypeError ?here"
    assert "culprit" not in summary  # nothing left of it: left out, like a missing field
    summary["title"].encode("utf-8")
