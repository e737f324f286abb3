"""Operations at the edge: JSON logs that carry a request id, and GET /metrics.

What the metrics are and how a scrape collects them is app/metrics.py.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from typing import Any

from flask import Blueprint, Flask, Response, g, has_request_context, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pythonjsonlogger.json import JsonFormatter

from app.extensions import bridge
from app.metrics import DELIVERIES, INGEST_SECONDS, SIGNATURE_FAILURES, registry
from app.web.errors import error_response

REQUEST_ID_HEADER = "X-Request-ID"
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
WEBHOOK_ENDPOINT = "webhooks.receive_sentry"

blueprint = Blueprint("observability", __name__)


# ---------------------------------------------------------------- logs


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def configure_logging(level: str, as_json: bool = True) -> None:
    """One handler on the root logger: JSON lines with a request id (or plain text)."""
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    if as_json:
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{levelname}{name}{message}{request_id}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _request_id() -> str:
    return request_id_of(request.environ)


def request_id_of(environ: dict[str, Any]) -> str:
    """The caller's X-Request-ID (else Sentry's Request-ID) if it is a plain token, else
    a new one: what the logs and the X-Request-ID answer header carry."""
    for key in ("HTTP_X_REQUEST_ID", "HTTP_REQUEST_ID"):
        candidate = environ.get(key, "")
        if isinstance(candidate, str) and _ACCEPTABLE_ID.match(candidate):
            return candidate
    return uuid.uuid4().hex


# ---------------------------------------------------------------- metrics


@blueprint.get("/metrics")
def metrics() -> Response:
    app_bridge = bridge()
    expected = app_bridge.settings.metrics_token
    if expected is not None and not _has_bearer(expected):
        response = error_response(
            401,
            "authentication_required",
            "/metrics needs `Authorization: Bearer <BRIDGE_METRICS_TOKEN>`.",
        )
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    body = generate_latest(registry(app_bridge))
    return Response(body, mimetype=CONTENT_TYPE_LATEST)


def _has_bearer(expected: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Constant time: the comparison must not tell how much of a guess was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8"), expected.encode("utf-8")
    )


def _observe_webhook(response: Response) -> None:
    # The receiver notes what the delivery came to (app/web/webhooks.py); an error raised
    # before there was an outcome is counted by the code it was answered with.
    outcome = str(g.get("webhook_outcome") or g.get("error_code") or "unknown")
    observe_delivery(outcome, g.get("started"))


def observe_delivery(outcome: str, started: float | None) -> None:
    """Count a webhook delivery by what it came to, and its time since `started`
    (perf_counter), whether the route answered it or app/web/spool_first.py did."""
    DELIVERIES.labels(outcome=outcome).inc()
    if outcome in {"signature_missing", "signature_mismatch"}:
        SIGNATURE_FAILURES.labels(reason=outcome.removeprefix("signature_")).inc()
    if started is not None:
        INGEST_SECONDS.observe(time.perf_counter() - started)


def init_app(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.request_id = _request_id()
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "-")
        if request.endpoint == WEBHOOK_ENDPOINT:
            _observe_webhook(response)
        return response

    app.register_blueprint(blueprint)
