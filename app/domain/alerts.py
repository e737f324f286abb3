"""Recognise a Sentry delivery and say what it asks of the bridge (SPEC 3 and 4).

`read_alert` takes the decoded JSON body and the `Sentry-Hook-Resource` header and
returns an `Alert`: the format, the intent (trigger, acknowledge, ...), the dedup key,
the severity, title, source and the payload's own time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from app.domain import issue_context
from app.domain.errors import UnrecognisedPayload
from app.domain.links import plain_web_url
from app.domain.payload_values import MAX_ID_LENGTH, issue_id_from_url, settings_values
from app.domain.payload_values import mapping as _dict
from app.domain.payload_values import sentry_id as _id
from app.domain.payload_values import text as _text
from app.domain.severity import Severity, severity_from_level

EXPECTED_FORMATS = (
    "a Sentry integration webhook ({action, installation, data, actor}), "
    "an issue payload (top-level `issue` object), "
    "or an event payload (top-level `event` object, including Sentry's legacy WebHooks plugin)"
)
ENVELOPE_RESOURCES = (
    "issue",
    "error",
    "event_alert",
    "metric_alert",
    "comment",
    "installation",
    "seer",
    "activity_alert",
    "preprod_artifact",
)


class Format(StrEnum):
    INTEGRATION = "sentry_integration"
    ISSUE = "issue"
    EVENT = "event"
    LEGACY_WEBHOOKS = "legacy_webhooks"


class Intent(StrEnum):
    TRIGGER = "trigger"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    COMMENT = "comment"
    INSTALLATION = "installation"
    IGNORE = "ignore"


@dataclass(frozen=True)
class Alert:
    """What one delivery says, independent of the format it came in."""

    format: Format
    resource: str
    action: str | None
    intent: Intent
    dedup_key: str | None = None
    severity: Severity = Severity.ERROR
    title: str = "Sentry Error"
    source: str = "Sentry"
    occurred_at: datetime | None = None
    issue_id: str | None = None
    short_id: str | None = None
    issue_url: str | None = None
    # The Sentry project's slug, and its name when the payload gives one (event alerts and
    # errors give only the slug; the service's learned name is used for them).
    project: str | None = None
    project_name: str | None = None
    assignee: str | None = None
    comment: str | None = None
    # A comment-like timeline entry: its kind ("comment", "seer", "sentry_activity") and data.
    note_kind: str = "comment"
    note_data: dict[str, Any] | None = None
    # The Sentry event a trigger counts: Sentry's retries of one event count once.
    event_id: str | None = None
    # Issue substatus (archived_until_escalating, regressed, escalating, ...).
    substatus: str | None = None
    # False for Sentry's own `issue.created`: sent once per issue, so a repeat for a
    # resolved incident is a re-send, not a regression (those come as `issue.unresolved`).
    can_reopen: bool = True
    actor: str | None = None
    installation_uuid: str | None = None
    # The service chosen in a Sentry alert-rule action (issue_alert.settings "service").
    target_service: str | None = None
    reason: str | None = None
    # What the payload says about the issue or event, kept on the incident as it is (no
    # enrichment needed): each is None (or empty) when the format does not carry it.
    culprit: str | None = None
    environment: str | None = None
    release: str | None = None
    platform: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # Sentry's own counts of the issue (`count`, `userCount`): issue payloads only.
    count: int | None = None
    user_count: int | None = None
    # The bridge's own test alert (app/services/alert_probe.py), recognised by its issue id.
    is_test: bool = False


# ---------------------------------------------------------------- small readers


MAX_TITLE_LENGTH = 1000
# Bounds of what the incident keeps of the payload's facts (Sentry's own limits are lower:
# 200 characters for a tag value, 64 for an environment, 250 for a release).
MAX_CULPRIT_LENGTH = 500
MAX_FACT_LENGTH = 255
MAX_TAGS = 50
MAX_TAG_LENGTH = 200
# Sentry's issue ids are decimal; the bridge's test alert names its issue `bridge-test-...`
# (app/services/alert_probe.py), which no Sentry issue can be.
TEST_ISSUE_PREFIX = "bridge-test-"


def _clipped(value: str | None, limit: int = 200) -> str | None:
    return value[:limit] if value is not None else None


def parse_time(value: Any) -> datetime | None:
    """Sentry times: ISO 8601 strings ('...Z' or offset) or epoch seconds; always UTC."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value.strip():
        raw = value.strip()
        try:
            return datetime.fromtimestamp(float(raw), tz=UTC)
        except (OverflowError, OSError):
            return None  # a number, but outside any date Sentry could mean
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return None


def _first_time(*values: Any) -> datetime | None:
    for value in values:
        parsed = parse_time(value)
        if parsed is not None:
            return parsed
    return None


def _count(value: Any) -> int | None:
    """Sentry's `count` is a decimal string, `userCount` an integer; both read as an int."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        found = value
    elif isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 18:
        found = int(value.strip())
    else:
        return None
    return found if 0 <= found < 2**63 else None


def _bounded_tags(tags: dict[str, str]) -> dict[str, str]:
    bounded: dict[str, str] = {}
    for key, value in tags.items():
        name, said = _text(key), _text(value)
        if name and said is not None and len(bounded) < MAX_TAGS:
            bounded[name[:MAX_TAG_LENGTH]] = said[:MAX_TAG_LENGTH]
    return bounded


def dedup_key(sentry_id: str) -> str:
    """SPEC 4: one incident per Sentry issue, keyed `sentry-<issue id>`; an event that names
    no issue is keyed by its event id the same way. Every path that opens one uses this."""
    return f"sentry-{sentry_id}"


def _key_or_none(issue_id: str | None) -> str | None:
    return dedup_key(issue_id) if issue_id else None


def source_for(project_name: str | None) -> str:
    """SPEC 4.4: `Sentry - <project name>`, or just `Sentry` when no project is named."""
    return f"Sentry - {project_name}" if project_name else "Sentry"


def _tags(value: Any) -> dict[str, str]:
    """Event tags come as a dict (OpsKnight) or as a list of [key, value] pairs (Sentry)."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items() if v is not None}
    tags: dict[str, str] = {}
    if isinstance(value, list):
        for pair in value:
            if isinstance(pair, list | tuple) and len(pair) == 2 and pair[0] is not None:
                tags[str(pair[0])] = str(pair[1])
            elif isinstance(pair, dict) and "key" in pair:
                tags[str(pair["key"])] = str(pair.get("value"))
    return tags


def _exception_value(event: dict[str, Any]) -> str | None:
    # Sentry 9 and older keyed the interface by its class path.
    exception = event.get("exception") or event.get("sentry.interfaces.Exception")
    values = exception.get("values") if isinstance(exception, dict) else exception
    if isinstance(values, list):
        for item in reversed(values):  # Sentry lists the outermost exception last
            if isinstance(item, dict):
                kind, value = _text(item.get("type")), _text(item.get("value"))
                if kind and value:
                    return f"{kind}: {value}"
                if value or kind:
                    return value or kind
    return None


def _event_title(event: dict[str, Any], *fallbacks: Any) -> str:
    """event.title; without it (Sentry 9 and older) the message, then the exception value.

    The legacy plugin's top-level `message` is "" for exceptions, so it comes after the
    event's own fields, and the culprit (a fallback) last.
    """
    logentry = _dict(event.get("logentry"))
    legacy_message = _dict(event.get("sentry.interfaces.Message"))
    for candidate in (
        event.get("title"),
        _dict(event.get("metadata")).get("title"),  # Sentry 9's stored title
        event.get("message"),
        logentry.get("formatted"),
        logentry.get("message"),
        legacy_message.get("formatted"),
        legacy_message.get("message"),
        _exception_value(event),
        *fallbacks,
    ):
        text = _text(candidate)
        if text:
            return text
    return "Sentry Error"


_PROJECT_IN_URL = re.compile(r"/projects/[^/]+/([^/]+)/")


def _project_from_url(*urls: Any) -> str | None:
    for url in urls:
        if isinstance(url, str):
            match = _PROJECT_IN_URL.search(url)
            if match:
                return match.group(1)
    return None


def _assignee(value: Any) -> str | None:
    if isinstance(value, dict):
        return _text(value.get("name")) or _text(value.get("email")) or _id(value.get("id"))
    return _text(value)


def _actor(value: Any) -> str | None:
    actor = _dict(value)
    name = _text(actor.get("name")) or _id(actor.get("id"))
    if not name:
        return None
    return f"{name} (Sentry {_text(actor.get('type')) or 'actor'})"


# ---------------------------------------------------------------- action rules


_ISSUE_ACTIONS = {
    None: Intent.TRIGGER,
    "created": Intent.TRIGGER,
    "unresolved": Intent.TRIGGER,
    "resolved": Intent.RESOLVE,
    "ignored": Intent.ACKNOWLEDGE,
    "archived": Intent.ACKNOWLEDGE,
    "assigned": Intent.ACKNOWLEDGE,
}


def issue_intent(action: str | None, status: str | None) -> Intent:
    """SPEC 4.1: the issue's own status wins over the action that announced it."""
    if status == "resolved":
        return Intent.RESOLVE
    if status in {"ignored", "archived"}:
        return Intent.ACKNOWLEDGE
    return _ISSUE_ACTIONS.get(action, Intent.IGNORE)


_METRIC_ACTIONS = {
    "critical": (Intent.TRIGGER, Severity.CRITICAL),
    "warning": (Intent.TRIGGER, Severity.WARNING),
    "open": (Intent.TRIGGER, Severity.ERROR),
    "resolved": (Intent.RESOLVE, Severity.INFO),
}


# ---------------------------------------------------------------- per resource


def _from_issue(
    fmt: Format,
    resource: str,
    action: str | None,
    issue: dict[str, Any],
    project: dict[str, Any],
    actor: str | None,
    assignee: Any = None,
) -> Alert:
    status = _text(issue.get("status"))
    intent = issue_intent(action, status)
    issue_id = _id(issue.get("id"))
    project_name = _text(project.get("name")) or _text(issue.get("project_name"))
    project_slug = _text(project.get("slug")) or _text(issue.get("project_slug"))
    return Alert(
        format=fmt,
        resource=resource,
        action=action,
        intent=intent,
        dedup_key=_key_or_none(issue_id),
        severity=severity_from_level(issue.get("level")),
        title=_text(issue.get("title")) or _event_title(issue),
        source=source_for(project_name or project_slug),
        occurred_at=_first_time(issue.get("lastSeen"), issue.get("firstSeen")),
        issue_id=issue_id,
        short_id=_text(issue.get("shortId")),
        issue_url=_text(issue.get("web_url")) or _text(issue.get("permalink")),
        project=project_slug or project_name,
        project_name=project_name,
        assignee=_assignee(assignee or issue.get("assignedTo")) if action == "assigned" else None,
        actor=actor,
        substatus=_text(issue.get("substatus")),
        # SPEC 4.1: only Sentry's envelope promises one `created` per issue; a hand-written
        # top-level issue (curl) keeps `created` -> trigger, reopen included.
        can_reopen=not (fmt is Format.INTEGRATION and action == "created"),
        reason=None if intent is not Intent.IGNORE else f"issue action {action!r} is not handled",
        culprit=_text(issue.get("culprit")),
        platform=_text(issue.get("platform")) or _text(project.get("platform")),
        count=_count(issue.get("count")),
        user_count=_count(issue.get("userCount")),
    )


def _from_event(
    fmt: Format,
    resource: str,
    action: str | None,
    event: dict[str, Any],
    issue_id: str | None,
    project_slug: str | None,
    actor: str | None,
    title_fallbacks: tuple[Any, ...] = (),
    level: Any = None,
    issue_url: str | None = None,
    project_name: str | None = None,
    culprit: Any = None,
) -> Alert:
    # Sentry 9 and older sent an integer `id` beside the hex `event_id`.
    event_id = _id(event.get("event_id")) or _id(event.get("id"))
    tags = _tags(event.get("tags"))
    # SPEC 4.3: before 2022 the issue was only in the event's URLs; it still comes first.
    issue_id = issue_id or issue_id_from_url(
        event.get("issue_url"), event.get("web_url"), issue_url
    )
    key = _key_or_none(issue_id) or _key_or_none(event_id)
    return Alert(
        format=fmt,
        resource=resource,
        action=action,
        intent=Intent.TRIGGER,
        dedup_key=key,
        severity=severity_from_level(event.get("level") or level or tags.get("level")),
        title=_event_title(event, *title_fallbacks),
        source=source_for(project_name or project_slug),
        occurred_at=_first_time(event.get("datetime"), event.get("timestamp")),
        issue_id=issue_id,
        issue_url=issue_url or _text(event.get("web_url")),
        project=project_slug or project_name,
        project_name=project_name,
        actor=actor,
        event_id=event_id,
        # The legacy plugin names the culprit beside the event too (Sentry 9: only there).
        culprit=_text(event.get("culprit")) or _text(culprit),
        environment=_text(event.get("environment")) or _text(tags.get("environment")),
        release=_text(event.get("release")) or _text(tags.get("release")),
        platform=_text(event.get("platform")),
        tags=tags,
    )


def _from_metric_alert(action: str | None, data: dict[str, Any], actor: str | None) -> Alert:
    metric = _dict(data.get("metric_alert"))
    rule = _dict(metric.get("alert_rule"))
    metric_id = _id(metric.get("id"))
    intent, severity = _METRIC_ACTIONS.get(action or "", (Intent.IGNORE, Severity.ERROR))
    project = _first_text(rule.get("projects")) or _first_text(metric.get("projects"))
    return Alert(
        format=Format.INTEGRATION,
        resource="metric_alert",
        action=action,
        intent=intent,
        dedup_key=f"sentry-metric-{metric_id}" if metric_id else None,
        severity=severity,
        # SPEC 4.4: the alert's own title; the description title ("Critical: ...") changes
        # with the trigger, so it only stands in when the title is missing.
        title=_text(metric.get("title"))
        or _text(data.get("description_title"))
        or _text(rule.get("name"))
        or "Sentry metric alert",
        source=source_for(project),
        occurred_at=_first_time(
            metric.get("date_closed") if action == "resolved" else None,
            metric.get("date_detected"),
            metric.get("date_started"),
        ),
        issue_url=_text(data.get("web_url")),
        project=project,
        actor=actor,
        reason=None
        if intent is not Intent.IGNORE
        else f"metric alert action {action!r} is not handled",
    )


def _first_text(values: Any) -> str | None:
    return _text(values[0]) if isinstance(values, list) and values else None


def _infer_resource(data: dict[str, Any]) -> str | None:
    # An activity alert carries `data.issue` too: its `activity`/`alert` tell it apart.
    if isinstance(data.get("issue"), dict) and ("activity" in data or "alert" in data):
        return "activity_alert"
    if isinstance(data.get("issue"), dict):
        return "issue"
    if isinstance(data.get("error"), dict):
        return "error"
    if isinstance(data.get("event"), dict):
        return "event_alert"
    if isinstance(data.get("metric_alert"), dict):
        return "metric_alert"
    if isinstance(data.get("installation"), dict):
        return "installation"
    if "comment" in data:
        return "comment"
    if "seer" in data or "run_id" in data:
        return "seer"
    if "buildId" in data or "appInfo" in data:
        return "preprod_artifact"
    return None


def _from_envelope(payload: dict[str, Any], resource_header: str | None) -> Alert:
    data = _dict(payload.get("data"))
    action = _text(payload.get("action"))
    actor = _actor(payload.get("actor"))
    installation_uuid = _id(_dict(payload.get("installation")).get("uuid"))
    resource = (resource_header or "").strip().lower() or _infer_resource(data)
    if resource is None:
        raise UnrecognisedPayload(
            "This looks like a Sentry integration webhook, but neither the "
            "Sentry-Hook-Resource header nor `data` says which resource it is. "
            f"Expected one of: {', '.join(ENVELOPE_RESOURCES)}.",
            expected=list(ENVELOPE_RESOURCES),
        )
    if resource == "issue":
        issue = _dict(data.get("issue"))
        if not issue:
            raise UnrecognisedPayload("An issue webhook must carry a `data.issue` object.")
        alert = _from_issue(
            Format.INTEGRATION,
            resource,
            action,
            issue,
            _dict(issue.get("project")),
            actor,
            assignee=data.get("assignee"),
        )
    elif resource in {"error", "event_alert"}:
        member = "error" if resource == "error" else "event"
        event = _dict(data.get(member))
        if not event:
            raise UnrecognisedPayload(f"A {resource} webhook must carry a `data.{member}` object.")
        alert = _from_event(
            Format.INTEGRATION,
            resource,
            action,
            event,
            issue_id=_id(event.get("issue_id")),
            project_slug=_project_from_url(event.get("url"), event.get("issue_url")),
            actor=actor,
            title_fallbacks=(
                _dict(data.get("issue_alert")).get("title"),
                data.get("triggered_rule"),
            ),
        )
        expected_action = "created" if resource == "error" else "triggered"
        if action not in {None, expected_action}:
            alert = _ignored(alert, f"{resource} action {action!r} is not handled")
        chosen = settings_values(_dict(data.get("issue_alert")).get("settings")).get("service")
        if chosen:
            alert = replace(alert, target_service=chosen)
    elif resource == "metric_alert":
        alert = _from_metric_alert(action, data, actor)
    elif resource == "comment":
        issue_id = _id(data.get("issue_id"))
        comment = _text(data.get("comment"))
        alert = Alert(
            format=Format.INTEGRATION,
            resource=resource,
            action=action,
            intent=Intent.COMMENT,
            dedup_key=_key_or_none(issue_id),
            occurred_at=parse_time(data.get("timestamp")),
            issue_id=issue_id,
            project=_text(data.get("project_slug")),
            comment=comment
            if action != "deleted"
            else f"Comment deleted in Sentry: {comment or ''}".strip(),
            actor=actor,
        )
    elif resource == "installation":
        alert = Alert(
            format=Format.INTEGRATION,
            resource=resource,
            action=action,
            intent=Intent.INSTALLATION,
            actor=actor,
            installation_uuid=_id(_dict(data.get("installation")).get("uuid")) or installation_uuid,
        )
    elif resource in {"seer", "activity_alert"}:
        note = (
            issue_context.seer_note(action, data)
            if resource == "seer"
            else issue_context.activity_alert_note(data)
        )
        alert = _from_note(resource, action, note, actor)
    else:
        # preprod_artifact, size_analysis and whatever Sentry adds next: answered, never paged.
        reason = f"resource {resource!r} does not drive incidents"
        alert = Alert(
            format=Format.INTEGRATION,
            resource=resource,
            action=action,
            intent=Intent.IGNORE,
            actor=actor,
            reason=reason,
        )
    if alert.installation_uuid is None and installation_uuid:
        alert = replace(alert, installation_uuid=installation_uuid)
    return alert


def _from_note(
    resource: str, action: str | None, note: issue_context.IssueNote, actor: str | None
) -> Alert:
    """Seer and activity alerts: a note on the issue's open incident, never a trigger."""
    if note.message is None:
        return Alert(
            format=Format.INTEGRATION,
            resource=resource,
            action=action,
            intent=Intent.IGNORE,
            dedup_key=_key_or_none(note.issue_id),
            issue_id=note.issue_id,
            actor=actor,
            reason=f"{note.reason}; {resource} notifications never drive incidents",
        )
    return Alert(
        format=Format.INTEGRATION,
        resource=resource,
        action=action,
        intent=Intent.COMMENT,
        dedup_key=_key_or_none(note.issue_id),
        issue_id=note.issue_id,
        comment=note.message,
        note_kind=note.kind,
        note_data=note.data,
        actor=actor,
    )


def _ignored(alert: Alert, reason: str) -> Alert:
    return replace(alert, intent=Intent.IGNORE, reason=reason)


def _is_envelope(payload: dict[str, Any], resource_header: str | None) -> bool:
    if not isinstance(payload.get("data"), dict):
        return False
    return isinstance(payload.get("installation"), dict) or bool(resource_header)


def _from_legacy_plugin(payload: dict[str, Any]) -> Alert:
    event = _dict(payload.get("event"))
    return _from_event(
        Format.LEGACY_WEBHOOKS,
        "event",
        None,
        event,
        issue_id=_id(payload.get("id")) or _id(event.get("issue_id")),
        project_slug=_text(payload.get("project_slug")) or _text(payload.get("project")),
        project_name=_text(payload.get("project_name")),
        actor=None,
        title_fallbacks=(payload.get("message"), payload.get("culprit")),
        level=payload.get("level"),
        issue_url=_text(payload.get("url")),
        culprit=payload.get("culprit"),
    )


_KEYED_INTENTS = {Intent.TRIGGER, Intent.ACKNOWLEDGE, Intent.RESOLVE, Intent.COMMENT}


def read_alert(payload: Any, resource_header: str | None = None) -> Alert:
    """Recognise the payload (SPEC 3, in order) and map it (SPEC 4)."""
    alert = _recognise(payload, resource_header)
    if alert.intent in _KEYED_INTENTS and alert.dedup_key is None:
        raise UnrecognisedPayload(
            f"The {alert.format.value} payload names neither a Sentry issue id nor an event id "
            f"(or metric alert id) of at most {MAX_ID_LENGTH} characters, so it cannot be "
            "matched to an incident.",
            format=alert.format.value,
        )
    # Names are kept in bounded columns; a longer one is not Sentry's, but must not crash.
    # The incident keeps bounded text (a 900 KB title must not bloat every list page);
    # the full text stays in the stored delivery.
    return replace(
        alert,
        title=alert.title[:MAX_TITLE_LENGTH],
        issue_url=plain_web_url(alert.issue_url),
        source=alert.source[:255],
        project=_clipped(alert.project),
        project_name=_clipped(alert.project_name),
        substatus=_clipped(alert.substatus, 64),
        short_id=_clipped(alert.short_id, 128),
        assignee=_clipped(alert.assignee),
        actor=_clipped(alert.actor),
        culprit=_clipped(alert.culprit, MAX_CULPRIT_LENGTH),
        environment=_clipped(alert.environment, MAX_FACT_LENGTH),
        release=_clipped(alert.release, MAX_FACT_LENGTH),
        platform=_clipped(alert.platform, 64),
        tags=_bounded_tags(alert.tags),
        is_test=(alert.issue_id or "").startswith(TEST_ISSUE_PREFIX),
    )


def _recognise(payload: Any, resource_header: str | None) -> Alert:
    if not isinstance(payload, dict):
        raise UnrecognisedPayload(
            f"The body must be a JSON object. Expected {EXPECTED_FORMATS}.",
            expected=["sentry_integration", "issue", "event"],
        )
    if _is_envelope(payload, resource_header):
        return _from_envelope(payload, resource_header)
    if isinstance(payload.get("issue"), dict):
        issue = payload["issue"]
        project = _dict(payload.get("project")) or _dict(issue.get("project"))
        return _from_issue(
            Format.ISSUE, "issue", _text(payload.get("action")), issue, project, None
        )
    if isinstance(payload.get("event"), dict):
        event_project = payload.get("project")
        if isinstance(event_project, dict):
            event = payload["event"]
            return _from_event(
                Format.EVENT,
                "event",
                None,
                event,
                issue_id=_id(event.get("issue_id")) or _id(payload.get("issue_id")),
                project_slug=_text(event_project.get("slug")),
                project_name=_text(event_project.get("name")),
                actor=None,
                title_fallbacks=(payload.get("message"),),
                level=payload.get("level"),
            )
        return _from_legacy_plugin(payload)
    raise UnrecognisedPayload(
        f"Unrecognised payload. Expected {EXPECTED_FORMATS}.",
        expected=["sentry_integration", "issue", "event"],
    )
