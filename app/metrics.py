"""The Prometheus metrics /metrics serves: webhook counters, job lag, notifications.

Webhook counters live in prometheus-client's multiprocess mode under gunicorn (the config
sets PROMETHEUS_MULTIPROC_DIR before workers start), so a scrape sums every worker.
Notification metrics are read from the outbox when scraped: the sender runs in the jobs
process, apart from the gunicorn workers that serve /metrics, so in-process counters would
never reach the scrape; the attempts table is the record.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select

from app.extensions import Bridge
from app.services.notification_outbox import backlog
from app.store.database import Database
from app.store.models import ContactMethod, SentryJob
from app.store.notify_models import Notification, NotificationAttempt, NotificationChannel

DELAY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

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


def registry(app_bridge: Bridge) -> CollectorRegistry:
    """What one scrape reports: every worker's counters, the job lag, the notifications."""
    found = CollectorRegistry()
    if app_bridge.settings.metrics_multiprocess:
        multiprocess.MultiProcessCollector(found)  # type: ignore[no-untyped-call]
    else:
        for metric in (DELIVERIES, INGEST_SECONDS, SIGNATURE_FAILURES):
            found.register(metric)
    found.register(LagCollector(app_bridge))
    found.register(NotificationCollector(app_bridge.database))
    return found


class LagCollector(Collector):
    """Job lag, measured when scraped: how long the oldest waiting work has waited."""

    def __init__(self, app_bridge: Bridge) -> None:
        self.bridge = app_bridge

    def collect(self) -> Iterator[GaugeMetricFamily]:
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


class NotificationCollector(Collector):
    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[Metric]:
        try:
            with self.database.reading() as session:
                # A page to a person counts under its contact method's kind (email, apprise).
                by_kind = func.coalesce(NotificationChannel.kind, ContactMethod.kind)
                outcomes = session.execute(
                    select(by_kind, NotificationAttempt.outcome, func.count())
                    .join(Notification, Notification.id == NotificationAttempt.notification_id)
                    .outerjoin(
                        NotificationChannel, NotificationChannel.id == Notification.channel_id
                    )
                    .outerjoin(ContactMethod, ContactMethod.id == Notification.contact_method_id)
                    .group_by(by_kind, NotificationAttempt.outcome)
                ).all()
                delay = Notification.first_attempt_delay_ms
                bucket_counts = session.execute(
                    select(
                        func.count(delay),
                        func.coalesce(func.sum(delay), 0.0),
                        *(
                            func.sum(case((delay <= bound * 1000, 1), else_=0))
                            for bound in DELAY_BUCKETS
                        ),
                    )
                ).one()
                failed = session.scalar(select(func.count()).where(Notification.status == "failed"))
                waiting, oldest = backlog(session, datetime.now(UTC))
        except Exception:  # the database being down is reported by /readyz, not here
            return
        total = CounterMetricFamily(
            "bridge_notifications",
            "Notification attempts by channel kind and outcome (sent, retry, failed).",
            labels=["kind", "outcome"],
        )
        for kind, outcome, count in outcomes:
            total.add_metric([kind, outcome], count)
        yield total
        yield _delay_histogram(bucket_counts)
        yield GaugeMetricFamily(
            "bridge_notifications_failed", "Notifications that failed for good.", value=failed or 0
        )
        yield GaugeMetricFamily(
            "bridge_notification_backlog", "Notifications due and not yet sent.", value=waiting
        )
        yield GaugeMetricFamily(
            "bridge_notification_backlog_oldest_seconds",
            "Age of the oldest notification due and not yet sent.",
            value=oldest,
        )


def _delay_histogram(row: Any) -> HistogramMetricFamily:
    count, total_ms, *cumulative = row
    buckets = [
        (str(bound), int(n or 0)) for bound, n in zip(DELAY_BUCKETS, cumulative, strict=True)
    ]
    buckets.append(("+Inf", int(count or 0)))
    return HistogramMetricFamily(
        "bridge_notification_delay_seconds",
        "From the commit that queued a notification to its first attempt.",
        buckets=buckets,
        sum_value=float(total_ms or 0) / 1000,
    )
