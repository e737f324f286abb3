"""Keeping secrets out of what an adapter reports.

Webhook and Slack URLs carry their secret in the path, Apprise URLs in the host or the
user part, SMTP URLs a password: an error message or a log line must never repeat one.
Everything an adapter puts into SendResult.error that came from outside (a receiver's
answer, a library's log line) goes through `scrub` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

from app.channels.base import ChannelSettings, ChannelTarget

REDACTED = "[redacted]"
# Anything that looks like a URL at all (scheme://...), whatever it points at.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")
_SPACE = re.compile(r"\s+")
# Path segments and query values shorter than this are words ("hooks", "v2"), not keys.
_MIN_SECRET_PART = 6
EXCERPT_CHARS = 200


def url_secrets(url: str | None) -> list[str]:
    """The parts of a URL that may be credentials: the whole, userinfo, host, path, query."""
    if not url:
        return []
    found = [url]
    try:
        parts = urlsplit(url)
    except ValueError:
        return found
    for raw in (parts.username, parts.password):
        if raw:
            found += [raw, unquote(raw)]
    # For Apprise URLs (tgram://bot:token/chat) the "host" part is often the secret.
    if parts.scheme not in ("http", "https") and len(parts.netloc) >= _MIN_SECRET_PART:
        found.append(parts.netloc)
    if parts.hostname and "." not in parts.hostname:
        found.append(parts.hostname)
    if len(parts.path) >= _MIN_SECRET_PART:
        found.append(parts.path)  # a receiver that echoes the path it was called on
    found += [part for part in parts.path.split("/") if len(part) >= _MIN_SECRET_PART]
    found += [value for _, value in parse_qsl(parts.query) if len(value) >= _MIN_SECRET_PART]
    return found


def target_secrets(target: ChannelTarget, settings: ChannelSettings | None = None) -> list[str]:
    """Every string of a target (and of the SMTP settings) that must not be repeated."""
    found = url_secrets(target.url)
    found += [value for value in (target.routing_key, target.secret) if value]
    if target.secret and target.secret.startswith("whsec_"):
        found.append(target.secret.removeprefix("whsec_"))
    if settings is not None:
        found += url_secrets(settings.smtp_url)
    return found


def scrub(text: str, secrets: Iterable[str], limit: int = EXCERPT_CHARS) -> str:
    """`text` on one line, without any of `secrets` or any URL, clipped to `limit` chars."""
    # Longest first, so a URL is removed whole before its parts are looked for.
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _URL.sub("[url]", text)
    text = _SPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
