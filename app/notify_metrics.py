"""Notification metrics, read from the outbox when /metrics is scraped.

The sender runs in the jobs process, apart from the gunicorn workers that serve /metrics,
so in-process counters would never reach the scrape; the attempts table is the record.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select

from app.services.notification_outbox import backlog
from app.store.database import Database
from app.store.models import ContactMethod
from app.store.notify_models import Notification, NotificationAttempt, NotificationChannel

DELAY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


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
