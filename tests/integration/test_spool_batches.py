"""The spool drain applies deliveries in batches: one transaction per batch, in order,
each once; a batch with a delivery that fails is applied again one by one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from app.extensions import Bridge
from app.jobs.spool_drain import run_spool_drain
from app.services import spooled_deliveries as spool_service
from app.services.spooled_deliveries import drain_spool, spool_delivery
from app.store.models import Delivery, Incident
from app.store.spool_files import Spool
from tests.support.inbound import inbound_for
from tests.support.integrations import MadeIntegration

BASE = 1_790_000_000


def _spool_events(spool: Spool, integration: MadeIntegration, count: int) -> list[str]:
    return [
        spool_delivery(spool, inbound_for(integration, "created", BASE + 10 * n))
        for n in range(count)
    ]


def test_batches_apply_in_order_once_each_one_transaction_per_batch(
    bridge: Bridge, make_integration: Callable[..., MadeIntegration], tmp_path: Path
) -> None:
    integration = make_integration(secret="s3cr3t")
    spool = Spool(tmp_path / "spool")
    names = _spool_events(spool, integration, 7)
    spool_delivery(spool, inbound_for(integration, "resolved", BASE + 100))

    report = drain_spool(bridge.database, bridge.secrets, spool, 1024 * 1024, batch_size=3)

    assert (report.applied, report.remaining, report.transactions) == (8, 0, 3)
    assert report.seconds > 0 and report.rate > 0
    with bridge.database.reading() as session:
        rows = session.execute(select(Delivery.spool_id, Delivery.decision).order_by(Delivery.id))
        applied = list(rows)
        incident = session.scalars(select(Incident)).one()
    # Arrival order is application order: the resolve, spooled last, comes last.
    assert [spool_id for spool_id, _decision in applied][:7] == names
    assert [decision for _spool_id, decision in applied] == (
        ["triggered"] + ["deduplicated"] * 6 + ["resolved"]
    )
    assert (incident.event_count, incident.status) == (7, "resolved")


def test_a_bad_delivery_in_a_batch_is_recorded_failed_and_the_rest_apply_once(
    bridge: Bridge,
    make_integration: Callable[..., MadeIntegration],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    integration = make_integration(secret="s3cr3t")
    spool = Spool(tmp_path / "spool")
    names = _spool_events(spool, integration, 5)
    bad = names[2]
    real = spool_service.ingest_delivery

    def crashing(session: Any, inbound: Any, *args: Any, **kwargs: Any) -> Any:
        if inbound.spool_id == bad:
            raise RuntimeError("a bug in the ingest path")
        return real(session, inbound, *args, **kwargs)

    monkeypatch.setattr(spool_service, "ingest_delivery", crashing)

    report = drain_spool(bridge.database, bridge.secrets, spool, 1024 * 1024, batch_size=5)

    # The batch failed, was rolled back, and went again one delivery per transaction.
    assert (report.applied, report.remaining) == (4, 0)
    assert report.transactions == 5
    with bridge.database.reading() as session:
        decisions = dict(session.execute(select(Delivery.spool_id, Delivery.decision)).all())
        stored = session.scalar(select(func.count()).select_from(Delivery))
        incident = session.scalars(select(Incident)).one()
    assert stored == 5  # nothing twice: four applied and one failed record
    assert decisions[bad] == "failed"
    assert incident.event_count == 4


def test_a_busy_database_pauses_the_drain_and_keeps_every_file(
    bridge: Bridge,
    make_integration: Callable[..., MadeIntegration],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    integration = make_integration(secret="s3cr3t")
    spool = Spool(tmp_path / "spool")
    _spool_events(spool, integration, 3)

    class Cancelled(Exception):
        sqlstate = "57014"  # query_canceled: the server answers, the work waited too long

    def cancelled(*_args: Any, **_kwargs: Any) -> Any:
        raise OperationalError("UPDATE incidents ...", {}, Cancelled())

    monkeypatch.setattr(spool_service, "ingest_delivery", cancelled)

    report = drain_spool(bridge.database, bridge.secrets, spool, 1024 * 1024)

    assert (report.applied, report.remaining, report.stopped_by_outage) == (0, 3, True)
    with bridge.database.reading() as session:  # not recorded as failed either
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0


def test_the_periodic_drain_holds_off_while_deliveries_are_still_being_spooled(
    bridge: Bridge, make_integration: Callable[..., MadeIntegration]
) -> None:
    integration = make_integration(secret="s3cr3t")
    spool_delivery(bridge.spool, inbound_for(integration, "created", BASE))
    try:
        held = run_spool_drain(bridge)  # the file is fresh: the web may still be spooling
        assert (held.held, held.applied, held.remaining) == (True, 0, 1)

        done = run_spool_drain(bridge, hold_while_spooling=False)  # `bridge spool drain`
        assert (done.held, done.applied, done.remaining) == (False, 1, 0)
    finally:
        for path in bridge.spool.pending():
            bridge.spool.remove(path)


def test_a_batch_commits_early_when_its_time_is_up_and_the_rest_follow_in_order(
    bridge: Bridge,
    make_integration: Callable[..., MadeIntegration],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    integration = make_integration(secret="s3cr3t")
    spool = Spool(tmp_path / "spool")
    names = _spool_events(spool, integration, 4)
    monkeypatch.setattr(spool_service, "BATCH_MAX_SECONDS", 0.0)  # one delivery, then commit

    report = drain_spool(bridge.database, bridge.secrets, spool, 1024 * 1024, batch_size=50)

    assert (report.applied, report.remaining, report.transactions) == (4, 0, 4)
    with bridge.database.reading() as session:
        order = list(session.scalars(select(Delivery.spool_id).order_by(Delivery.id)))
        assert session.scalars(select(Incident.event_count)).one() == 4
    assert order == names


def test_a_sustained_burst_holds_no_spooled_alert_back_more_than_a_second(
    bridge: Bridge, make_integration: Callable[..., MadeIntegration], monkeypatch: Any
) -> None:
    # Deliveries still arriving (the newest is fresh), but the oldest has waited past the
    # hold: it is an alert nobody has been paged for yet, so the drain goes ahead.
    integration = make_integration(secret="s3cr3t")
    spool_delivery(bridge.spool, inbound_for(integration, "created", BASE))
    monkeypatch.setattr(type(bridge.spool), "newest_age_seconds", lambda self: 0.1)
    monkeypatch.setattr(type(bridge.spool), "oldest_age_seconds", lambda self: 1.2)
    try:
        report = run_spool_drain(bridge)
        assert (report.held, report.applied, report.remaining) == (False, 1, 0)
    finally:
        for path in bridge.spool.pending():
            bridge.spool.remove(path)
