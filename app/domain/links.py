"""Links that payloads carry ("Open in Sentry", issue URLs, permalinks): which may be
shown as links, and which may replace the one an incident already has.

A payload is not the bridge's to trust: an unsigned integration's body is anyone's, and
even a signed one only proves who sent it, not where its URLs point. A responder clicks
"Open in Sentry" in a hurry, so only Sentry's own pages become links.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_LINK_LENGTH = 2000
# A backslash, whitespace (what str.isspace calls so: re's \s is the same test), control
# characters and DEL. One search, not a Python test per character: every delivery's
# links pass here.
_UNSAFE_CHARACTER = re.compile(r"[\\\s\x00-\x1f\x7f]")
SENTRY_SAAS_HOST = "sentry.io"


def plain_web_url(value: str | None) -> str | None:
    """`value` if it is an absolute http(s) URL a browser reads the way we do, else None.

    Refused: other schemes (javascript:, data:), user info (`https://sentry.io@evil/`),
    backslashes (browsers read `https://evil\\@sentry.io` as host `evil`), whitespace and
    control characters, and anything longer than a Sentry URL ever is.
    """
    if not value or len(value) > MAX_LINK_LENGTH:
        return None
    if _UNSAFE_CHARACTER.search(value):
        return None
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a malformed port or IPv6 literal
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname or not port_ok:
        return None
    if "@" in parts.netloc:
        return None
    return value


def host_of(url: str | None) -> str | None:
    """The lower-case host of a plain web URL, else None."""
    plain = plain_web_url(url)
    return urlsplit(plain).hostname if plain is not None else None


def is_sentry_link(url: str | None, sentry_base_url: str) -> bool:
    """Whether `url` points at the configured Sentry, or at sentry.io or a subdomain."""
    host = host_of(url)
    if host is None:
        return False
    if host == SENTRY_SAAS_HOST or host.endswith("." + SENTRY_SAAS_HOST):
        return True
    return host == host_of(sentry_base_url)


def may_replace_link(current: str | None, new: str | None) -> bool:
    """Whether a later delivery's link may replace the incident's: never by a link to
    another host, so once "Open in Sentry" works, no delivery can point it elsewhere."""
    if plain_web_url(new) is None:
        return False
    current_host = host_of(current)
    return current_host is None or current_host == host_of(new)
