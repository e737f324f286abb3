"""The JSON API under /api: incidents, services, integrations, deliveries, OpenAPI."""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("api", __name__, url_prefix="/api")


def load_routes() -> Blueprint:
    """Import the route modules (they attach themselves to the blueprint) once."""
    from app.web.api import (  # noqa: F401
        accounts,
        admin,
        deliveries,
        incidents,
        notifications,
        oncall,
        openapi,
    )

    return blueprint
