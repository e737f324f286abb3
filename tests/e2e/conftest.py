"""The e2e fixtures: a stack (database and environment), gunicorn serving it, Chromium.

The harness they use (Stack, post, drain_spool, ...) is tests/support/stack.py."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.store.migrate import upgrade
from tests.fakes.fixtures import (  # noqa: F401 - pytest finds fixtures by name
    smtp_server,
    webhook_receiver,
)
from tests.support.ports import free_port
from tests.support.stack import (
    BIN,
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    Stack,
    fresh_database,
    stop,
    wait_until_healthy,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["sqlite", "postgres"])
def stack(request: pytest.FixtureRequest, tmp_path: Path, encryption_key: str) -> Iterator[Stack]:
    """A migrated, empty database of the given kind and the environment for it."""
    url, drop = fresh_database(request.param, tmp_path)
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "BRIDGE_INSTANCE_PATH": str(tmp_path / "instance"),
        "BRIDGE_ENCRYPTION_KEYS": encryption_key,
        "PORT": str(free_port()),
        # Two workers serve one test's requests; each start imports the app once per
        # worker, so four would cost twice the CPU (make test starts two servers at once).
        # The tests of what several workers share ask for four (`four_workers`).
        "WEB_CONCURRENCY": "2",
        "LOG_LEVEL": "INFO",
        # Its own metrics folder, even if the shell names one: gunicorn empties it on start,
        # and another test's server may be running meanwhile (make test runs two at once).
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    made = Stack(env=env)
    # In-process: a `bridge` start-up costs ~1.5 s a test; `bridge db upgrade` itself runs
    # as a command in the `make run` test (test_readme_and_make.py).
    upgrade(url)
    try:
        yield made
    finally:
        drop()


@pytest.fixture
def four_workers(stack: Stack) -> None:
    """Before gunicorn starts: four workers, for a test of what they share (a rate limit,
    the metrics, a burst racing for one incident's row lock, slow clients holding threads)."""
    stack.env["WEB_CONCURRENCY"] = "4"


@pytest.fixture
def patient_sender(stack: Stack) -> None:
    """Before gunicorn starts: a sender that waits 10 s, not Sentry's second, and room to
    wait for an apply slot, for a test of what happens once deliveries are applied (a race
    for one row) rather than of admission control, which on a loaded 2-core machine would
    rightly spool most of a burst (tests/integration/test_admission.py tests that)."""
    stack.env["BRIDGE_SENDER_DEADLINE_MS"] = "10000"
    stack.env["BRIDGE_ADMISSION_WAIT_MS"] = "5000"


@pytest.fixture
def server(stack: Stack, tmp_path: Path) -> Iterator[Stack]:
    """gunicorn with config/gunicorn.conf.py serving the stack's database."""
    log_path = tmp_path / "gunicorn.log"
    stack.logs.append(log_path)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=stack.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_healthy(stack.base_url, process)
            yield stack
        finally:
            stop(process)


@pytest.fixture
def browser() -> Iterator[object]:
    """Debian's Chromium under Playwright (missing: a failure under CI=true, else a skip)."""
    if not Path(CHROMIUM).exists():
        message = f"Chromium is not installed at {CHROMIUM} (make test installs Debian's chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()
