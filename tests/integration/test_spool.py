"""The spool: kept on disk in arrival order, applied once each, in order, when the DB is back."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from app.extensions import Bridge
from app.services.delivery_records import InboundDelivery
from app.services.spooled_deliveries import drain_spool, spool_delivery
from app.store.database import Database
from app.store.models import Delivery, Incident
from app.store.spool_files import Spool
from tests.support.inbound import inbound_for
from tests.support.integrations import MadeIntegration


def test_spool_keeps_deliveries_in_arrival_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    names = [spool.put({"n": index}, f"body {index}".encode()) for index in range(5)]

    pending = spool.pending()

    assert [path.stem for path in pending] == names
    assert [spool.read(path)[0]["n"] for path in pending] == [0, 1, 2, 3, 4]
    assert spool.read(pending[2])[1] == b"body 2"
    assert not list((tmp_path / "spool").glob(".*.tmp"))  # nothing half-written left behind
    spool.remove(pending[0])
    assert len(spool.pending()) == 4
    assert spool.oldest_age_seconds() >= 0


def test_only_one_drainer_holds_the_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    with spool.exclusive() as first, Spool(tmp_path / "spool").exclusive() as second:
        assert (first, second) == (True, False)
    with spool.exclusive() as again:
        assert again is True


def test_drain_applies_in_order_once_and_survives_a_crash_before_removal(
    bridge: Bridge, make_integration: Callable[..., MadeIntegration], tmp_path: Path
) -> None:
    integration = make_integration(secret="s3cr3t")
    spool = Spool(tmp_path / "spool")
    base = int(datetime.now(UTC).timestamp()) - 600
    deliveries = [("created", 0), ("created", 10), ("resolved", 20), ("unresolved", 30)]
    for action, offset in deliveries:
        spool_delivery(spool, inbound_for(integration, action, base + offset))
    first_file = spool.pending()[0]
    survivor = tmp_path / "copy.json"
    shutil.copy(first_file, survivor)

    report = drain_spool(bridge.database, bridge.secrets, spool, bridge.settings.max_body_bytes)
    shutil.copy(survivor, first_file)  # as if the process died after commit, before unlink
    again = drain_spool(bridge.database, bridge.secrets, spool, bridge.settings.max_body_bytes)

    assert (report.applied, report.remaining, report.stopped_by_outage) == (4, 0, False)
    assert (again.applied, again.already_applied, again.remaining) == (0, 1, 0)
    with bridge.database.transaction() as session:
        decisions = list(session.scalars(select(Delivery.decision).order_by(Delivery.id)))
        incident = session.scalars(select(Incident)).one()
        spooled = session.scalar(select(func.count()).where(Delivery.spool_id.is_not(None)))
    # In order: created, created again, resolved, then a regression reopens it.
    assert decisions == ["triggered", "deduplicated", "resolved", "reopened"]
    assert (incident.status, incident.event_count, incident.reopen_count) == ("triggered", 3, 1)
    assert spooled == 4


def test_drain_stops_at_an_outage_and_keeps_the_files(
    make_integration: Callable[..., MadeIntegration], bridge: Bridge, tmp_path: Path
) -> None:
    integration = make_integration()
    spool = Spool(tmp_path / "spool")
    spool_delivery(spool, inbound_for(integration, "created", 1_790_000_000))
    unreachable = Database("postgresql+psycopg://postgres@127.0.0.1:9/none", connect_timeout=1)
    try:
        report = drain_spool(unreachable, bridge.secrets, spool, 1024 * 1024)
    finally:
        unreachable.dispose()

    assert report.stopped_by_outage is True
    assert report.remaining == 1


def test_spooled_delivery_for_an_unknown_integration_is_dropped_not_stuck(
    bridge: Bridge, make_integration: Callable[..., MadeIntegration], tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool")
    integration = make_integration()
    unknown = InboundDelivery(integration_id="unknown", body=b"{}", received_at=datetime.now(UTC))
    spool_delivery(spool, unknown)
    spool_delivery(spool, inbound_for(integration, "created", 1_790_000_000))

    report = drain_spool(bridge.database, bridge.secrets, spool, 1024 * 1024)

    # The unknown one would have been a 404; the delivery behind it is not held up.
    assert (report.applied, report.remaining) == (1, 0)
