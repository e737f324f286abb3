"""What Seer and activity-alert webhooks tell about a Sentry issue, as a timeline note.

Neither resource ever pages: they add context to the issue's open incident, like a
comment (SPEC 4.1). Shapes, from Sentry's own code and docs:
- `seer` (docs: integration-platform/webhooks/seer): `data.run_id`, `data.group_id` (the
  issue id, an integer) and, per action, `root_cause`, `solution`, `changes` or
  `pull_requests`.
- `activity_alert` (getsentry/sentry `notifications/notification_action/activity_registry/
  sentry_app.py`): `data.issue` (a serialised issue plus `url`/`webUrl`), `data.activity`
  (`type`, e.g. `seer_root_cause_completed`, and `details`) and `data.alert` (the workflow:
  `id`, `name`, `url`).
Pure: values in, values out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.domain.payload_values import mapping, sentry_id, text

# Summaries are Seer's prose: enough to act on, not a page of it in every timeline.
_SUMMARY_LIMIT = 1500
_NOTE_LIMIT = 4000


@dataclass(frozen=True)
class IssueNote:
    """A timeline entry for the issue's open incident, or the reason there is none."""

    issue_id: str | None
    kind: str
    message: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


def _summary(value: Any) -> str | None:
    found = text(value)
    if found is None:
        return None
    return found if len(found) <= _SUMMARY_LIMIT else found[: _SUMMARY_LIMIT - 1] + "…"


def _web_link(value: Any) -> str | None:
    """Only http(s) links are kept: they are shown to people, who may click them."""
    found = text(value)
    if found and found.lower().startswith(("https://", "http://")) and len(found) <= 2000:
        return found
    return None


def _items(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _titles(steps: Any) -> list[str]:
    return [title for step in _items(steps) if (title := text(step.get("title")))]


def _root_cause(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    cause = mapping(data.get("root_cause"))
    lines = [f"Seer root cause: {_summary(cause.get('description')) or '(no description)'}"]
    for step in _items(cause.get("steps")):
        title = text(step.get("title"))
        if title and step.get("is_most_important_event") is True:
            where = mapping(step.get("relevant_code_file"))
            path, repo = text(where.get("file_path")), text(where.get("repo_name"))
            place = f" ({repo}: {path})" if path and repo and path != "N/A" else ""
            lines.append(f"Key step: {title}{place}")
    return lines, []


def _solution(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    solution = mapping(data.get("solution"))
    lines = [f"Seer solution: {_summary(solution.get('description')) or '(no description)'}"]
    lines += [
        f"{number}. {title}" for number, title in enumerate(_titles(solution.get("steps")), 1)
    ]
    return lines, []


def _changes(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    lines = ["Seer prepared code changes:"]
    for change in _items(data.get("changes")):
        title = text(change.get("title")) or "(untitled change)"
        repo, branch = text(change.get("repo_name")), text(change.get("branch_name"))
        lines.append(
            f"- {title}"
            + (f" in {repo}" if repo else "")
            + (f", branch {branch}" if branch else "")
        )
    return lines, []


def _pull_requests(entries: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    lines, links = ["Seer opened pull requests:"], list[str]()
    for entry in entries:
        pull = mapping(entry.get("pull_request"))
        link = _web_link(pull.get("pr_url") or entry.get("url"))
        repo, number = text(entry.get("repo_name")), text(pull.get("pr_number"))
        label = " ".join(part for part in (repo, f"#{number}" if number else None) if part)
        lines.append(f"- {label or 'pull request'}" + (f": {link}" if link else ""))
        if link:
            links.append(link)
    return lines, links


def _created_pull_requests(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    return _pull_requests(_items(data.get("pull_requests")))


_Reader = Callable[[dict[str, Any]], tuple[list[str], list[str]]]
# The Seer actions with findings; `*_started` and the rest are progress notices.
_SEER_READERS: dict[str, _Reader] = {
    "root_cause_completed": _root_cause,
    "solution_completed": _solution,
    "coding_completed": _changes,
    "pr_created": _created_pull_requests,
}


def seer_note(action: str | None, data: dict[str, Any]) -> IssueNote:
    """Seer's findings for the issue in `data.group_id`; progress notices carry none."""
    issue_id = sentry_id(data.get("group_id"))
    reader = _SEER_READERS.get(action or "")
    if issue_id is None:
        return IssueNote(None, "seer", reason="the Seer notification names no issue")
    if reader is None:
        return IssueNote(
            issue_id,
            "seer",
            reason=f"Seer {action or 'notification'} carries no findings to record",
        )
    lines, links = reader(data)
    return IssueNote(
        issue_id,
        "seer",
        message="\n".join(lines)[:_NOTE_LIMIT],
        data={"seer_action": action, "run_id": text(data.get("run_id")), "links": links},
    )


def activity_alert_note(data: dict[str, Any]) -> IssueNote:
    """A Sentry alert that fired on the issue's activity (today: Seer's progress)."""
    issue = mapping(data.get("issue"))
    activity, alert = mapping(data.get("activity")), mapping(data.get("alert"))
    issue_id = sentry_id(issue.get("id"))
    if issue_id is None:
        return IssueNote(None, "sentry_activity", reason="the activity alert names no issue")
    kind = text(activity.get("type")) or "activity"
    details = mapping(activity.get("details"))
    name = text(alert.get("name")) or text(alert.get("title"))
    what = kind.replace("_", " ")
    lines = [f"Sentry alert {name!r}: {what}" if name else f"Sentry {what}"]
    summary = _summary(details.get("summary"))
    if summary:
        lines.append(summary)
    links: list[str] = []
    pulls = _items(details.get("pull_requests"))
    if pulls:
        pull_lines, links = _pull_requests(pulls)
        lines += pull_lines[1:]
    alert_link = _web_link(alert.get("url") or alert.get("web_url"))
    if alert_link:
        links.append(alert_link)
    return IssueNote(
        issue_id,
        "sentry_activity",
        message="\n".join(lines)[:_NOTE_LIMIT],
        data={"activity_type": kind, "alert": name, "links": links},
    )
