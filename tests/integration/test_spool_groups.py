"""Group commit: deliveries put by several threads while a spool file is being written
share the next file and its two fsyncs; each is answered only once its file is durable,
applied once each in order, and its file removed only once all of it is applied."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.extensions import Bridge
from app.services.spooled_deliveries import drain_spool, spool_delivery
from app.store import spool_files
from app.store.models import Delivery, Incident
from app.store.spool_files import Spool, SpoolWriteFailed
from tests.support.inbound import inbound_for
from tests.support.integrations import MadeIntegration

BASE = 1_790_000_000
THREADS = 6


def _slow_first_write(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The first file's write waits until the event is set (the others then pile up)."""
    release = threading.Event()
    real = Spool._write_durably
    calls = 0

    def write(path: Path, data: bytes) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            release.wait(5)
        real(path, data)

    monkeypatch.setattr(Spool, "_write_durably", staticmethod(write))
    return release


def _put_together(put: Callable[[int], Any], release: threading.Event) -> list[Any]:
    """Put 0 first (it writes alone, held), then 1..THREADS-1 meanwhile; every result."""
    results: list[Any] = [None] * THREADS

    def one(index: int) -> None:
        try:
            results[index] = put(index)
        except Exception as error:
            results[index] = error

    first = threading.Thread(target=one, args=(0,))
    first.start()
    time.sleep(0.1)  # the first is now writing its file
    others = [threading.Thread(target=one, args=(index,)) for index in range(1, THREADS)]
    for thread in others:
        thread.start()
    time.sleep(0.2)
    assert all(result is None for result in results)  # nobody answered before durable
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    return results


def test_puts_made_while_a_file_is_written_share_the_next_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path / "spool")
    release = _slow_first_write(monkeypatch)

    ids = _put_together(lambda n: spool.put({"n": n}, f"body {n}".encode()), release)

    files = spool.pending()
    assert len(files) == 2  # the first alone, the other five together
    assert len(set(ids)) == THREADS
    assert spool.pending_deliveries() == THREADS
    assert spool_files.deliveries_in(files[1]) == THREADS - 1
    kept = [record for path in files for record, _body in spool.read_all(path)]
    assert sorted(record["n"] for record in kept) == list(range(THREADS))
    assert {record["spool_id"] for record in kept} == set(ids)
    grouped = spool.read_all(files[1])
    assert [body for _record, body in grouped] == [
        f"body {record['n']}".encode() for record, _body in grouped
    ]
    assert not list((tmp_path / "spool").glob(".*.tmp"))


def test_a_failed_group_write_fails_every_delivery_of_it_and_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path / "spool")
    release = _slow_first_write(monkeypatch)
    real_rename = os.rename

    def rename(source: Any, target: Any) -> None:
        if "+" in str(target):  # the group's file: the disk refuses it
            raise OSError(28, "No space left on device")
        real_rename(source, target)

    monkeypatch.setattr(spool_files.os, "rename", rename)

    results = _put_together(lambda n: spool.put({"n": n}, b"{}"), release)

    assert isinstance(results[0], str)  # the first file was written alone, and kept
    assert all(isinstance(result, SpoolWriteFailed) for result in results[1:])
    assert [path.stem for path in spool.pending()] == [results[0]]
    assert not list((tmp_path / "spool").glob(".*.tmp"))


def _spool_a_group(
    spool: Spool, integration: MadeIntegration, monkeypatch: pytest.MonkeyPatch
) -> list[Any]:
    """THREADS events of one issue spooled at once: a file alone, then one of the rest."""
    release = _slow_first_write(monkeypatch)
    return _put_together(
        lambda n: spool_delivery(spool, inbound_for(integration, "created", BASE + 10 * n)),
        release,
    )


def test_a_grouped_file_is_applied_once_in_order_and_removed_after_its_last_delivery(
    bridge: Bridge,
    make_integration: Callable[..., MadeIntegration],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spool = Spool(tmp_path / "spool")
    ids = _spool_a_group(spool, make_integration(secret="s3cr3t"), monkeypatch)
    grouped = spool.pending()[1]
    removed_while: list[bool] = []
    real_remove_many = Spool.remove_many

    def remove_many(self: Spool, paths: list[Path]) -> None:
        removed_while.append(grouped in paths)
        real_remove_many(self, paths)

    monkeypatch.setattr(Spool, "remove_many", remove_many)

    # Batches of 2: the grouped file's five deliveries span three transactions.
    report = drain_spool(bridge.database, bridge.secrets, spool, 1024 * 1024, batch_size=2)
    again = drain_spool(bridge.database, bridge.secrets, spool, 1024 * 1024)

    assert (report.applied, report.remaining) == (THREADS, 0)
    assert (again.applied, again.remaining) == (0, 0)
    # Removed with its last delivery's batch, not before (the first batches took a part).
    assert len(removed_while) >= 3 and removed_while[-1] and not any(removed_while[:-1])
    assert not grouped.exists()
    with bridge.database.reading() as session:
        stored = list(session.scalars(select(Delivery.spool_id).order_by(Delivery.id)))
        incident = session.scalars(select(Incident)).one()
    # The first file first, then the group's (ids <name>.0 .. <name>.4, in put order).
    assert stored[0] == ids[0]
    assert stored[1:] == sorted(ids[1:], key=lambda spool_id: int(spool_id.rsplit(".", 1)[1]))
    assert incident.event_count == THREADS


def test_a_grouped_file_partly_applied_before_a_crash_applies_only_the_rest(
    bridge: Bridge,
    make_integration: Callable[..., MadeIntegration],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spool = Spool(tmp_path / "spool")
    _spool_a_group(spool, make_integration(secret="s3cr3t"), monkeypatch)
    grouped = spool.pending()[1]
    saved = grouped.read_bytes()

    first = drain_spool(bridge.database, bridge.secrets, spool, 1024 * 1024)
    grouped.write_bytes(saved)  # as if the process died after commit, before the unlink
    again = drain_spool(bridge.database, bridge.secrets, spool, 1024 * 1024)

    assert (first.applied, again.applied, again.already_applied) == (THREADS, 0, THREADS - 1)
    with bridge.database.reading() as session:
        assert session.scalars(select(Incident.event_count)).one() == THREADS


def test_a_record_the_spool_cannot_hold_fails_its_put_and_keeps_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")

    with pytest.raises(TypeError):
        spool.put({"n": object()}, b"{}")

    assert spool.pending() == []
    assert spool.put({"n": 1}, b"{}")  # the spool is not left stuck
