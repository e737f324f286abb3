"""Liveness for load balancers: 200 only when the database answers."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app.extensions import bridge
from app.web.errors import error_response

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    try:
        bridge().database.ping()
    except Exception:  # any database failure means "not healthy", said plainly
        return error_response(503, "database_unavailable", "The database does not answer.")
    return jsonify({"status": "ok", "database": "ok"})
