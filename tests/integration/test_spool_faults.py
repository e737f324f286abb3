"""The spool under faults: it never answers 202 for a delivery it did not keep, and one
bad file never blocks the files behind it. Disk faults are injected at os.write."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import Bridge
from app.services.spooled_deliveries import drain_spool, spool_delivery
from app.store import spool_files as spool_module
from app.store.spool_files import Spool, SpoolWriteFailed
from tests.support.inbound import inbound_for
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build

_real_write = os.write


def _short_writes(fd: int, data: Any) -> int:
    """At most 7 bytes a call, as a write interrupted by signals or a nearly full disk."""
    return _real_write(fd, bytes(data[:7]))


def _disk_full(fd: int, data: Any) -> int:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_short_writes_are_completed_so_the_spooled_file_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path / "spool")
    body = b'{"action":"created","data":{"issue":{"id":"1"}}}' * 50
    monkeypatch.setattr(spool_module.os, "write", _short_writes)

    spool.put({"integration_id": "abc"}, body)

    [path] = spool.pending()
    record, kept = spool.read(path)
    assert kept == body
    assert record["integration_id"] == "abc"


def test_a_write_that_makes_no_progress_fails_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path / "spool")
    monkeypatch.setattr(spool_module.os, "write", lambda fd, data: 0)

    with pytest.raises(SpoolWriteFailed):
        spool.put({"integration_id": "abc"}, b"{}")

    assert spool.pending() == []
    assert list((tmp_path / "spool").iterdir()) == []


def test_a_full_disk_during_an_outage_answers_503_not_202(
    unreachable_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery = build("integration_issue_created", secret="s3cr3t")
    monkeypatch.setattr(spool_module.os, "write", _disk_full)

    response = unreachable_app.test_client().post(
        "/api/integrations/sentry?integrationId=abc", data=delivery.body, headers=delivery.headers
    )

    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "delivery_not_kept"
    assert "send it again" in response.get_json()["error"]["message"]
    spool = unreachable_app.extensions["bridge"].spool
    assert spool.pending() == []
    assert not list(spool.directory.glob(".*.tmp"))


def test_readyz_is_not_ready_while_the_spool_cannot_be_written(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.get("/readyz").get_json()["checks"]["spool"] == "ok"
    monkeypatch.setattr(spool_module.os, "write", _disk_full)

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == "ok"
    assert "No space left" in body["checks"]["spool"]


def test_readyz_is_not_ready_when_the_disk_has_no_room_for_one_more_delivery(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.statvfs

    def almost_full(path: Any) -> Any:
        found = real(path)
        return os.statvfs_result((*found[:4], 1, *found[5:]))  # f_bavail: one block left

    monkeypatch.setattr(spool_module.os, "statvfs", almost_full)

    body = client.get("/readyz").get_json()

    assert body["status"] == "not_ready"
    assert "bytes free" in body["checks"]["spool"]


def test_a_corrupt_or_truncated_file_is_quarantined_and_the_rest_are_applied(
    bridge: Bridge,
    client: FlaskClient,
    make_integration: Callable[..., MadeIntegration],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spool = bridge.spool
    monkeypatch.setattr(spool, "directory", tmp_path / "spool")
    integration = make_integration(secret="s3cr3t")
    now = int(time.time())
    spool_delivery(spool, inbound_for(integration, "created", now - 60))
    truncated = spool.pending()[0]
    truncated.write_bytes(truncated.read_bytes()[:-40])  # as a power cut mid-write would
    (spool.directory / "00000000000000000001-garbage.json").write_bytes(b"\x00\xff not json")
    spool_delivery(spool, inbound_for(integration, "created", now - 30))

    report = drain_spool(bridge.database, bridge.secrets, spool, bridge.settings.max_body_bytes)

    assert (report.applied, report.quarantined, report.remaining) == (1, 2, 0)
    assert sorted(path.name for path in spool.quarantine_directory.iterdir()) == sorted(
        ["00000000000000000001-garbage.json", truncated.name]
    )
    ready = client.get("/readyz").get_json()
    assert ready["checks"]["spool_quarantined"] == 2
    assert ready["checks"]["spool_pending"] == 0
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "bridge_spool_quarantined_files 2.0" in metrics


def test_the_drain_removes_temporary_files_left_by_a_dead_writer(
    bridge: Bridge, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.directory.mkdir()
    stale = spool.directory / ".00000000000000000001-0000001-000001.tmp"
    stale.write_bytes(b'{"half":')
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = spool.directory / ".00000000000000000002-0000001-000002.tmp"
    fresh.write_bytes(b'{"being written')  # a live writer's file must survive

    drain_spool(bridge.database, bridge.secrets, spool, bridge.settings.max_body_bytes)

    assert not stale.exists()
    assert fresh.exists()


def test_spool_write_failure_names_the_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool_module.os, "write", _disk_full)

    with pytest.raises(SpoolWriteFailed) as failed:
        Spool(tmp_path / "spool").put({}, b"{}")

    assert failed.value.errno == errno.ENOSPC
