"""The jobs process describes what it runs, and its log is not one line per job run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from click.testing import CliRunner
from cryptography.fernet import Fernet

from app.cli import main
from app.extensions import Bridge
from app.jobs.catalogue import JOBS
from app.jobs.scheduler import build_scheduler, quiet_per_run_logs
from config.settings import Settings


@pytest.fixture
def scheduled_ids(tmp_path: Path) -> list[str]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'b.db'}",
        instance_path=tmp_path,
        encryption_keys=(Fernet.generate_key().decode(),),
    )
    bridge = Bridge(settings)
    try:
        return [job.id for job in build_scheduler(bridge).get_jobs()]
    finally:
        bridge.database.dispose()


def test_every_scheduled_job_is_described(scheduled_ids: list[str]) -> None:
    described = {job.id for job in JOBS}
    assert scheduled_ids, "the scheduler has no jobs?"
    assert set(scheduled_ids) <= described


def test_jobs_run_help_lists_every_job_with_its_interval(scheduled_ids: list[str]) -> None:
    result = CliRunner().invoke(main, ["jobs", "run", "--help"])

    assert result.exit_code == 0, result.output
    for job in JOBS:
        assert f"{job.id}:" in result.output
    for job_id in scheduled_ids:
        assert f"{job_id}:" in result.output
    assert "BRIDGE_PRUNE_INTERVAL_MINUTES (60 min)" in result.output
    assert "BRIDGE_SPOOL_DRAIN_SECONDS (1 s)" in result.output
    # click keeps each job's own lines (the \b marker), so ids never run into each other.
    assert "\n  spool_drain:\n" in result.output


@pytest.fixture
def restore_apscheduler_level() -> Iterator[None]:
    logger = logging.getLogger("apscheduler.executors.default")
    before = logger.level
    yield
    logger.setLevel(before)


def run_one_job(caplog: pytest.LogCaptureFixture) -> list[str]:
    ran = threading.Event()
    scheduler = BackgroundScheduler(timezone="UTC")
    # An hourly job that runs now: a one-off job is removed by the scheduler after it runs,
    # which can race with shutdown (JobLookupError in the scheduler's thread) under load.
    scheduler.add_job(ran.set, "interval", hours=1, id="probe", next_run_time=datetime.now(UTC))
    with caplog.at_level(logging.DEBUG):
        scheduler.start()
        try:
            assert ran.wait(5)
        finally:
            scheduler.shutdown(wait=True)
    return [r.getMessage() for r in caplog.records if r.name == "apscheduler.executors.default"]


@pytest.mark.usefixtures("restore_apscheduler_level")
def test_per_run_lines_are_quiet_by_default(caplog: pytest.LogCaptureFixture) -> None:
    quiet_per_run_logs("INFO")

    assert run_one_job(caplog) == []


@pytest.mark.usefixtures("restore_apscheduler_level")
def test_per_run_lines_come_back_with_log_level_debug(caplog: pytest.LogCaptureFixture) -> None:
    quiet_per_run_logs("debug")

    lines = run_one_job(caplog)
    assert any(line.startswith("Running job") for line in lines)
    assert any("executed successfully" in line for line in lines)
