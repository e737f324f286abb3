"""Health for load balancers and orchestrators.

/healthz: the process is up and the database answers (200, else 503).
/readyz: ready to take traffic: the database answers, its schema is at the newest
migration, and the spool can be written (it is where deliveries go in an outage: a node
that could keep neither must not take them). The spool backlog and the files quarantined
as unreadable are reported (a delivery waiting there is safe, not lost).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from app.extensions import bridge
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
    spool = app_bridge.spool
    problem = spool.writable_problem(app_bridge.settings.max_body_bytes)
    checks: dict[str, Any] = {
        "spool": "ok" if problem is None else problem,
        "spool_pending": len(spool.pending()),
        "spool_oldest_seconds": round(spool.oldest_age_seconds(), 3),
        "spool_quarantined": spool.quarantined(),
    }
    try:
        revision = current_revision(app_bridge.database.engine)
    except Exception:  # whatever the failure, the answer is "not ready", said plainly
        checks.update(database="unavailable", migrations="unknown")
    else:
        checks["database"] = "ok"
        checks["migrations"] = "ok" if revision == _HEAD else f"at {revision}, need {_HEAD}"
    is_ready = checks["database"] == "ok" and checks["migrations"] == "ok" and problem is None
    response = jsonify({"status": "ready" if is_ready else "not_ready", "checks": checks})
    response.status_code = 200 if is_ready else 503
    return response
