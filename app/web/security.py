"""Browser-facing hardening: security headers on every response, and the rate limiters.

The pages load one same-origin script (/static/bridge.js) and one stylesheet and have no
inline script or style, so the page policy allows 'self' only. Everything that is not a
page (JSON, static files) gets a policy that allows nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app
from flask.wrappers import Response
from werkzeug.routing import IntegerConverter

from app.services.rate_limits import DeliveryRateLimit, LoginRateLimit
from app.store.rate_limits import LimitStore, RateLimitStore
from config.settings import Settings

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
    "frame-ancestors 'none'"
)
NOTHING_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000"
RATE_LIMIT_FILE = "rate_limits.db"


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` in routes, bounded to what a database id column can hold.

    Werkzeug's own accepts any length, and /api/deliveries/2147483648 then fails
    in the database (a 500, found by schemathesis); out of range is simply no such page.
    """

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)  # ids are INTEGER columns
        super().__init__(map, *args, **kwargs)


@dataclass(frozen=True)
class RateLimits:
    """The limiters of one app; their counters live in one file shared by the workers of
    a host or, with BRIDGE_RATE_LIMIT_URL, in Redis shared by every node."""

    store: LimitStore
    deliveries: DeliveryRateLimit
    logins: LoginRateLimit


def rate_limits() -> RateLimits:
    """The RateLimits of the app handling the current request (edges only)."""
    found = current_app.extensions["rate_limits"]
    assert isinstance(found, RateLimits)
    return found


def init_app(app: Flask) -> None:
    """Before any blueprint: the routes' int converter, the rate limiters, the headers."""
    from app.extensions import Bridge

    app.url_map.converters["int"] = DatabaseIdConverter
    bridge = app.extensions["bridge"]
    assert isinstance(bridge, Bridge)
    settings = bridge.settings
    store = limit_store(settings)
    app.extensions["rate_limits"] = RateLimits(
        store=store,
        deliveries=DeliveryRateLimit(
            store,
            settings.rate_limit_per_minute,
            refused_per_minute=settings.refused_rate_limit_per_minute,
            unknown_per_minute=settings.unknown_rate_limit_per_minute,
        ),
        logins=LoginRateLimit(
            store, settings.login_max_failures, settings.login_failure_window_seconds
        ),
    )
    is_https_only = settings.secure_cookies

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        for name, value in security_headers(response.mimetype == "text/html", is_https_only):
            headers.setdefault(name, value)
        return response


def security_headers(is_page: bool, is_https_only: bool) -> list[tuple[str, str]]:
    """The headers every answer carries unless it set its own (also those answered
    before Flask, app/web/spool_first.py)."""
    headers = [
        ("Content-Security-Policy", PAGE_POLICY if is_page else NOTHING_POLICY),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
    ]
    if is_https_only:
        headers.append(("Strict-Transport-Security", HSTS))
    return headers


def limit_store(settings: Settings) -> LimitStore:
    """Redis when BRIDGE_RATE_LIMIT_URL is set (every node), else this host's file."""
    if settings.rate_limit_url:
        from app.store.shared_limits import RedisRateLimitStore

        return RedisRateLimitStore(settings.rate_limit_url, key_prefix=settings.rate_limit_prefix)
    return RateLimitStore(settings.instance_path / RATE_LIMIT_FILE)


def same_site_path(target: str | None) -> str | None:
    """`target` if it is a path on this site a browser cannot read as another host.

    Refused: absolute URLs, `//host` and `/\\host` (browsers read a backslash as a
    slash), any backslash, whitespace or control character, and dot segments or empty
    segments that a browser folds into a `//host` on the way.
    """
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if "\\" in target or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return None
    parsed = urlsplit(target)
    if parsed.scheme or parsed.netloc or "//" in parsed.path:
        return None
    if any(segment in {".", ".."} for segment in parsed.path.split("/")):
        return None
    return target
