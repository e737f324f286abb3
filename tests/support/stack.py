"""The real server's harness: the `bridge` CLI and gunicorn on loopback, the database a
stack runs on, and plain HTTP to it (the e2e fixtures that use these are in
tests/e2e/conftest.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.support.databases import POSTGRES_URL, with_search_path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass
class Stack:
    """One database, the environment pointing at it, and helpers to drive CLI and server."""

    env: dict[str, str]
    logs: list[Path] = field(default_factory=list)

    def bridge(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(BIN / "bridge"), *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"bridge {' '.join(args)} failed: {done.stderr}")
        return done

    def bridge_json(self, *args: str) -> Any:
        return json.loads(self.bridge(*args).stdout)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}"

    def log_text(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self.logs if path.exists())


def fresh_database(kind: str, tmp_path: Path) -> tuple[str, Callable[[], None]]:
    """A new, empty database of the kind ("sqlite" or "postgres") and how to drop it."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'bridge.db'}", lambda: None
    request_problem = None
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    schema = f"bridge_e2e_{uuid.uuid4().hex[:12]}"
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:
        request_problem = str(error)
    if request_problem is not None:
        engine.dispose()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {request_problem}")
        pytest.skip(f"PostgreSQL unreachable: {request_problem}")

    def drop() -> None:
        with engine.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()

    return with_search_path(POSTGRES_URL, schema), drop


def wait_until_healthy(
    base_url: str, process: subprocess.Popen[bytes], seconds: float = 30
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)  # a test waits on every server start: not longer than needed
    raise AssertionError(f"{base_url}/healthz did not answer within {seconds} s")


def stop(process: subprocess.Popen[bytes], group: bool = False) -> None:
    if process.poll() is None:
        if group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL) if group else process.kill()
            process.wait(timeout=10)


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    """POST over real HTTP; returns (status, decoded JSON body)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def drain_spool(stack: Stack, seconds: float = 60) -> None:
    """Run the jobs process until the spool holds no delivery (it applies them in order).

    A delivery that waits past the webhook's statement deadline (on a loaded machine,
    behind the row lock of a hot incident) is spooled and answered 202; without a jobs
    process it waits there, so a test that counts applied events drains the spool first.
    """
    spool = Path(stack.env["BRIDGE_INSTANCE_PATH"]) / "spool"
    if not (spool.exists() and any(spool.glob("*.json"))):
        return  # nothing was spooled: no jobs process to start (and stop) for it
    jobs = subprocess.Popen(
        [str(BIN / "bridge"), "jobs", "run"],
        cwd=ROOT,
        env=stack.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + seconds
        while spool.exists() and any(spool.glob("*.json")):
            if time.monotonic() > deadline:
                raise AssertionError(f"the spool was not drained within {seconds} s")
            time.sleep(0.2)
    finally:
        stop(jobs)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# No network beyond loopback: the switches the machine's own Chromium check uses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
