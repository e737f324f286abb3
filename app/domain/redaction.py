"""Bodies for the delivery inspector: what was sent, with credentials blanked out."""

from __future__ import annotations

import json
import re
from typing import Any

# Keys whose values are credentials in payloads Sentry sends (installation.created carries
# the one-time OAuth grant `code`) or that people paste.
SENSITIVE_KEYS = frozenset(
    {
        "code",
        "token",
        "refreshtoken",
        "refresh_token",
        "access_token",
        "client_secret",
        "clientsecret",
        "secret",
        "password",
        "authorization",
    }
)
REDACTED = "[redacted]"
# In text that is not whole JSON (a refused delivery keeps only a prefix of its body): a
# sensitive key's string value, up to its closing quote or the end of the text.
_SENSITIVE_IN_TEXT = re.compile(
    r'("(?:' + "|".join(sorted(SENSITIVE_KEYS)) + r')"\s*:\s*")(?:[^"\\]|\\.)*("|$)',
    re.IGNORECASE,
)


def _scrub(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        changed = False
        cleaned: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in SENSITIVE_KEYS and item not in (None, ""):
                cleaned[key] = REDACTED
                changed = True
            else:
                cleaned[key], inner = _scrub(item)
                changed = changed or inner
        return cleaned, changed
    if isinstance(value, list):
        results = [_scrub(item) for item in value]
        return [item for item, _ in results], any(flag for _, flag in results)
    return value, False


def redacted_body(body: bytes) -> str:
    """The body as text; a JSON body with credentials is shown with them blanked out."""
    text = body.decode("utf-8", "replace")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return _SENSITIVE_IN_TEXT.sub(lambda found: found[1] + REDACTED + found[2], text)
    cleaned, changed = _scrub(document)
    if not changed:
        return text  # exactly as sent, byte for byte (what the signature was over)
    return json.dumps(cleaned, ensure_ascii=False, indent=2)
