"""Health for load balancers and orchestrators.

/healthz: the process is up and the database answers (200, else 503).
/readyz: ready to take traffic: the database answers and its schema is at the newest
migration; the spool backlog is reported (a delivery waiting there is safe, not lost).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify

from app.extensions import Bridge, bridge
from app.store.migrate import current_revision, head_revision
from app.web.errors import error_response

blueprint = Blueprint("health", __name__)
_HEAD = head_revision()


@blueprint.get("/healthz")
def healthz() -> Response:
    try:
        bridge().database.ping()
    except Exception:  # any database failure means "not healthy", said plainly
        return error_response(503, "database_unavailable", "The database does not answer.")
    return jsonify({"status": "ok", "database": "ok"})


@blueprint.get("/readyz")
def readyz() -> Response:
    app_bridge = bridge()
    checks: dict[str, Any] = {
        "spool_pending": len(app_bridge.spool.pending()),
        "spool_oldest_seconds": round(app_bridge.spool.oldest_age_seconds(), 3),
    }
    try:
        revision = current_revision(app_bridge.database.engine)
    except Exception:  # whatever the failure, the answer is "not ready", said plainly
        checks.update(database="unavailable", migrations="unknown")
    else:
        checks["database"] = "ok"
        checks["migrations"] = "ok" if revision == _HEAD else f"at {revision}, need {_HEAD}"
        checks.update(_notification_backlog(app_bridge))
    is_ready = checks["database"] == "ok" and checks["migrations"] == "ok"
    response = jsonify({"status": "ready" if is_ready else "not_ready", "checks": checks})
    response.status_code = 200 if is_ready else 503
    return response


def _notification_backlog(app_bridge: Bridge) -> dict[str, Any]:
    """The outbox backlog, reported (like the spool's) without deciding readiness."""
    from app.services.notification_outbox import backlog

    try:
        with app_bridge.database.reading() as session:
            waiting, oldest = backlog(session, datetime.now(UTC))
    except Exception:  # a schema not yet migrated: the migrations check says so
        return {"notifications_pending": None, "notifications_oldest_seconds": None}
    return {"notifications_pending": waiting, "notifications_oldest_seconds": round(oldest, 3)}
