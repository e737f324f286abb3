"""Server-rendered pages for on-call people: login, incidents, admin. Little JavaScript."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint

from app.domain.links import is_sentry_link
from app.domain.redaction import redacted_body
from app.extensions import bridge

blueprint = Blueprint("views", __name__)


@blueprint.app_context_processor
def _template_helpers() -> dict[str, Any]:
    return {
        "now_text": lambda: datetime.now(UTC).strftime("%H:%M:%S UTC"),
        "redacted_body": redacted_body,
        "sentry_link": sentry_link,
    }


def sentry_link(url: str | None) -> str | None:
    """`url` if pages may show it as a link (Sentry's own pages only), else None: the
    page then shows it as text."""
    return url if is_sentry_link(url, bridge().settings.sentry_base_url) else None


def load_routes() -> Blueprint:
    from app.web.views import (  # noqa: F401
        admin,
        contacts,
        incidents,
        login,
        notifications,
        oncall,
    )

    return blueprint
