"""Health for load balancers and orchestrators.

/healthz: the process is up and the database answers (200, else 503).
/readyz: ready to take traffic: the database answers, its schema is at the newest
migration, this node's encryption keys read the secrets stored in it, and the
spool can be written (it is where deliveries go in an outage: a node that could
keep neither must not take them). The spool backlog and the files quarantined as
unreadable are reported (a delivery waiting there is safe, not lost), and so is a
shared rate-limit store (Redis) that does not answer: a warning, not unreadiness,
since the limits then fail open and every delivery is still taken.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify

from app.extensions import Bridge, bridge
from app.services.key_check import unreadable_secret_count
from app.store.migrate import current_revision, head_revision
from app.web.errors import error_response

blueprint = Blueprint("health", __name__)
log = logging.getLogger(__name__)
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
        "spool_pending": spool.pending_deliveries(),
        "spool_oldest_seconds": round(spool.oldest_age_seconds(), 3),
        "spool_quarantined": spool.quarantined(),
        "rate_limits": _rate_limit_check(),
    }
    try:
        revision = current_revision(app_bridge.database.engine)
    except Exception:  # whatever the failure, the answer is "not ready", said plainly
        checks.update(database="unavailable", migrations="unknown")
    else:
        checks["database"] = "ok"
        checks["migrations"] = "ok" if revision == _HEAD else f"at {revision}, need {_HEAD}"
        checks["encryption_keys"] = _key_check(app_bridge)
        checks.update(_notification_backlog(app_bridge))
    is_ready = (
        checks["database"] == "ok"
        and checks["migrations"] == "ok"
        and checks.get("encryption_keys") == "ok"
        and problem is None
    )
    response = jsonify({"status": "ready" if is_ready else "not_ready", "checks": checks})
    response.status_code = 200 if is_ready else 503
    return response


def _rate_limit_check() -> str:
    from app.web.security import rate_limits

    problem = rate_limits().store.problem()
    return "ok" if problem is None else f"warning: {problem}"


def _key_check(app_bridge: Bridge) -> str:
    try:
        with app_bridge.database.reading() as session:
            unreadable = unreadable_secret_count(session, app_bridge.secrets)
    except Exception:  # tables missing before the first migration: reported by migrations
        return "unknown"
    if unreadable:
        log.error("BRIDGE_ENCRYPTION_KEYS cannot decrypt %d stored secrets", unreadable)
        return (
            f"BRIDGE_ENCRYPTION_KEYS cannot decrypt {unreadable} of the secrets in the "
            "database: every node must have the same keys (see the deploy docs)"
        )
    return "ok"


def _notification_backlog(app_bridge: Bridge) -> dict[str, Any]:
    """The outbox backlog, reported (like the spool's) without deciding readiness."""
    from app.services.notification_outbox import backlog

    try:
        with app_bridge.database.reading() as session:
            waiting, oldest = backlog(session, datetime.now(UTC))
    except Exception:  # a schema not yet migrated: the migrations check says so
        return {"notifications_pending": None, "notifications_oldest_seconds": None}
    return {"notifications_pending": waiting, "notifications_oldest_seconds": round(oldest, 3)}
