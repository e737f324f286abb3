"""Operations: JSON logs that carry a request id, and Prometheus metrics at /metrics.

Metrics live in prometheus-client's multiprocess mode under gunicorn (the config sets
PROMETHEUS_MULTIPROC_DIR before workers start), so /metrics sums every worker.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response, g, has_request_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pythonjsonlogger.json import JsonFormatter
from sqlalchemy import func, select

from app.extensions import Bridge, bridge
from app.web.errors import error_response

REQUEST_ID_HEADER = "X-Request-ID"
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
WEBHOOK_ENDPOINT = "webhooks.receive_sentry"

DELIVERIES = Counter(
    "bridge_deliveries_total", "Webhook deliveries by outcome (action or error code).", ["outcome"]
)
INGEST_SECONDS = Histogram(
    "bridge_ingest_seconds",
    "Time to answer a webhook delivery.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
SIGNATURE_FAILURES = Counter(
    "bridge_signature_failures_total", "Deliveries refused for their signature.", ["reason"]
)

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
    for header in (REQUEST_ID_HEADER, "Request-ID"):
        candidate = request.headers.get(header, "")
        if _ACCEPTABLE_ID.match(candidate):
            return candidate
    return uuid.uuid4().hex


# ---------------------------------------------------------------- metrics


class _LagCollector(Collector):
    """Job lag, measured when scraped: how long the oldest waiting work has waited."""

    def __init__(self, app_bridge: Bridge) -> None:
        self.bridge = app_bridge

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from app.store.models import SentryJob

        lag = GaugeMetricFamily(
            "bridge_job_lag_seconds", "Age of the oldest waiting item, by queue.", labels=["queue"]
        )
        lag.add_metric(["spool"], self.bridge.spool.oldest_age_seconds())
        quarantined = GaugeMetricFamily(
            "bridge_spool_quarantined_files",
            "Spool files moved aside as unreadable (truncated or corrupt); look at them.",
        )
        quarantined.add_metric([], self.bridge.spool.quarantined())
        yield quarantined
        now = datetime.now(UTC)
        try:
            with self.bridge.database.transaction() as session:
                oldest = session.scalar(
                    select(func.min(SentryJob.run_after)).where(
                        SentryJob.status == "pending", SentryJob.run_after <= now
                    )
                )
        except Exception:  # the database being down is reported by /readyz, not here
            oldest = None
        lag.add_metric(["sentry_jobs"], (now - oldest).total_seconds() if oldest else 0.0)
        yield lag


def _registry(app_bridge: Bridge) -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for metric in (DELIVERIES, INGEST_SECONDS, SIGNATURE_FAILURES):
            registry.register(metric)
    registry.register(_LagCollector(app_bridge))
    from app.notify_metrics import NotificationCollector

    registry.register(NotificationCollector(app_bridge.database))
    return registry


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
    body = generate_latest(_registry(app_bridge))
    return Response(body, mimetype=CONTENT_TYPE_LATEST)


def _has_bearer(expected: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Constant time: the comparison must not tell how much of a guess was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8"), expected.encode("utf-8")
    )


def _observe_webhook(response: Response) -> None:
    document: Any = response.get_json(silent=True) or {}
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict):
        outcome = str(error.get("code", "error"))
    else:
        outcome = str(document.get("action", "unknown")) if isinstance(document, dict) else "?"
    DELIVERIES.labels(outcome=outcome).inc()
    if outcome in {"signature_missing", "signature_mismatch"}:
        SIGNATURE_FAILURES.labels(reason=outcome.removeprefix("signature_")).inc()
    started = g.get("started")
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
