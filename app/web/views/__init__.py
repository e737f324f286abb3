"""Server-rendered pages for on-call people: login, incidents, admin. Little JavaScript."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint

from app.domain.redaction import redacted_body

blueprint = Blueprint("views", __name__)


@blueprint.app_context_processor
def _template_helpers() -> dict[str, Any]:
    return {
        "now_text": lambda: datetime.now(UTC).strftime("%H:%M:%S UTC"),
        "redacted_body": redacted_body,
    }


def load_routes() -> Blueprint:
    from app.web.views import admin, incidents, login, oncall  # noqa: F401

    return blueprint
