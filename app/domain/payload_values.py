"""Reading single values out of a Sentry payload without trusting its shape.

The one guarded JSON reader: the format readers (app/domain/alerts.py), the readers of
issue context (app/domain/issue_context.py) and of Sentry's API answers
(app/sentry/enrichment.py), and the UI-component and installation use cases all read
Sentry's JSON through it: one definition of what a Sentry id, name or setting is.
"""

from __future__ import annotations

import re
from typing import Any

MAX_ID_LENGTH = 64
MAX_SETTING_LENGTH = 1000


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def text(value: Any, limit: int | None = None) -> str | None:
    """A non-empty string for ids and names that Sentry sends as str or int (at most
    `limit` characters when given).

    Without NUL characters and lone surrogates: PostgreSQL text cannot hold NUL, and a
    lone surrogate cannot be encoded as UTF-8 at all (both seen by fuzzing, as 500s).
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        found = str(value).replace("\x00", "").strip()
        if not found.isascii():
            found = found.encode("utf-8", "replace").decode("utf-8")
        return found[:limit] or None
    return None


def sentry_id(value: Any) -> str | None:
    """A Sentry id (issue, event, metric alert, installation); longer is not one of its ids.

    Sentry sends issue ids as strings in issue payloads and as integers in comments, Seer
    and older event payloads: both read as the same string, so they make the same key.
    """
    found = text(value)
    return found if found is not None and len(found) <= MAX_ID_LENGTH else None


# `.../issues/<id>/` in an issue's web or API URL, and in an event's web URL
# (`.../issues/<id>/events/<event id>/`). Sentry's issue ids are decimal.
_ISSUE_IN_URL = re.compile(r"/issues/([0-9]{1,20})(?:[/?#]|$)")


def issue_id_from_url(*urls: Any) -> str | None:
    """The issue id in the first URL that names one (pre-2022 event payloads had no other)."""
    for url in urls:
        if isinstance(url, str):
            match = _ISSUE_IN_URL.search(url)
            if match:
                return match.group(1)
    return None


def settings_values(fields: Any, limit: int = MAX_SETTING_LENGTH) -> dict[str, str]:
    """The settings of a Sentry alert-rule action or issue-link form, by name.

    Alert-rule settings arrive as [{"name", "value"}] (issue_alert.settings in a webhook,
    and the body of the alert-rule action request); issue-link fields as a dict. Values
    that are not text (or are empty) are left out.
    """
    if isinstance(fields, dict):
        pairs = ((str(key), text(value, limit)) for key, value in fields.items())
        return {key: value for key, value in pairs if value is not None}
    found: dict[str, str] = {}
    for item in fields if isinstance(fields, list) else []:
        item = mapping(item)
        name, value = text(item.get("name")), text(item.get("value"), limit)
        if name and value is not None:
            found[name] = value
    return found
