"""What the bridge keeps of a Sentry issue and its latest event: a small, stable summary.

Pure functions over the JSON Sentry answers (GET .../issues/{id}/ and .../events/latest/);
no I/O. Missing or oddly shaped fields are left out rather than guessed.
"""

from __future__ import annotations

from typing import Any

from app.domain.payload_values import mapping as _dict
from app.domain.payload_values import text

MAX_TAGS = 50
MAX_TEXT = 500


def _text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """The guarded reader of the domain, clipped by default to what a summary keeps."""
    return text(value, limit)


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _tags(event: dict[str, Any], issue: dict[str, Any]) -> dict[str, str]:
    """Event tags come as [{"key", "value"}] (REST API) or [[key, value]] (webhooks)."""
    tags: dict[str, str] = {}
    for item in event.get("tags") or []:
        if isinstance(item, dict):
            key, value = item.get("key"), item.get("value")
        elif isinstance(item, list | tuple) and len(item) == 2:
            key, value = item
        else:
            continue
        key_text, value_text = _text(key, 200), _text(value)
        if key_text and value_text is not None and len(tags) < MAX_TAGS:
            tags[key_text] = value_text
    if not tags:
        # The issue endpoint lists top tag values per key; keep the most common one.
        for item in issue.get("tags") or []:
            if not isinstance(item, dict):
                continue
            top = [_dict(v) for v in item.get("topValues") or []]
            key_text = _text(item.get("key"), 200)
            value_text = _text(top[0].get("value")) if top else None
            if key_text and value_text is not None and len(tags) < MAX_TAGS:
                tags[key_text] = value_text
    return tags


def top_in_app_frame(event: dict[str, Any]) -> dict[str, Any] | None:
    """The innermost in-app frame of the last exception (Sentry lists frames oldest first)."""
    for entry in event.get("entries") or []:
        entry = _dict(entry)
        if entry.get("type") != "exception":
            continue
        values = [_dict(v) for v in _dict(entry.get("data")).get("values") or []]
        for exception in reversed(values):
            frames = [_dict(f) for f in _dict(exception.get("stacktrace")).get("frames") or []]
            in_app = [f for f in frames if f.get("inApp") is True or f.get("in_app") is True]
            if in_app:
                frame = in_app[-1]
                found = {
                    "filename": _text(frame.get("filename")),
                    "module": _text(frame.get("module")),
                    "function": _text(frame.get("function")),
                    "line": _count(frame.get("lineNo", frame.get("lineno"))),
                    "context_line": _text(frame.get("context_line")),
                }
                return {key: value for key, value in found.items() if value is not None}
    return None


def _release(event: dict[str, Any], issue: dict[str, Any]) -> str | None:
    for candidate in (event.get("release"), issue.get("lastRelease"), issue.get("firstRelease")):
        if isinstance(candidate, dict):
            version = _text(candidate.get("version"), 200)
            if version:
                return version
        elif (version := _text(candidate, 200)) is not None:
            return version
    return None


def summarise(issue: dict[str, Any], event: dict[str, Any] | None) -> dict[str, Any]:
    """The enrichment stored on an incident: counts, users, times, culprit, release, ..."""
    event = event or {}
    project = _dict(issue.get("project"))
    summary: dict[str, Any] = {
        "issue_id": _text(issue.get("id"), 64),
        "short_id": _text(issue.get("shortId"), 128),
        "title": _text(issue.get("title")),
        "status": _text(issue.get("status"), 40),
        "level": _text(issue.get("level"), 20),
        "event_count": _count(issue.get("count")),
        "user_count": _count(issue.get("userCount")),
        "first_seen": _text(issue.get("firstSeen"), 64),
        "last_seen": _text(issue.get("lastSeen"), 64),
        "culprit": _text(issue.get("culprit")) or _text(event.get("culprit")),
        "release": _release(event, issue),
        "permalink": _text(issue.get("permalink"), 2000),
        "project": _text(project.get("slug"), 200),
        "platform": _text(issue.get("platform") or event.get("platform"), 64),
        "latest_event_id": _text(event.get("eventID") or event.get("id"), 64),
        "top_in_app_frame": top_in_app_frame(event),
        "tags": _tags(event, issue),
    }
    return {key: value for key, value in summary.items() if value not in (None, {}, [])}
