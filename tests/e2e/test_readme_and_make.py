"""What the README promises works as written: `make run` and the curl examples."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, Stack, free_port, stop, wait_until_healthy

pytestmark = pytest.mark.e2e
EXAMPLE = re.compile(r"<!-- example: (\w+) -->\n```sh\n(.*?)```", re.DOTALL)


def readme_examples() -> dict[str, str]:
    return dict(EXAMPLE.findall((ROOT / "README.md").read_text(encoding="utf-8")))


def run_example(server: Stack, script: str, **env: str) -> dict[str, object]:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**server.env, "BRIDGE": server.base_url, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def test_readme_has_the_three_curl_examples() -> None:
    assert set(readme_examples()) == {"issue", "event", "signed"}


def test_readme_curl_examples_work_as_written(server: Stack) -> None:
    examples = readme_examples()
    server.bridge_json("service", "create", "Checkout")
    open_id = server.bridge_json("integration", "create", "--service", "checkout")["id"]
    signed = server.bridge_json(
        "integration", "create", "--service", "checkout", "--secret", "readme-secret"
    )

    first = run_example(server, examples["issue"], INTEGRATION_ID=open_id)
    again = run_example(server, examples["issue"], INTEGRATION_ID=open_id)
    event = run_example(server, examples["event"], INTEGRATION_ID=open_id)
    resolved = run_example(
        server, examples["signed"], INTEGRATION_ID=signed["id"], SECRET="readme-secret"
    )
    wrong = run_example(server, examples["signed"], INTEGRATION_ID=signed["id"], SECRET="nope")

    assert (first["action"], first["dedup_key"]) == ("triggered", "sentry-1234567")
    assert again["action"] == "deduplicated"
    assert again["incident"]["event_count"] == 2  # type: ignore[index]
    assert event["action"] == "triggered"
    assert event["incident"]["severity"] == "critical"  # type: ignore[index]
    assert event["dedup_key"] == "sentry-9f1c2d3e4b5a69788766554433221100"
    assert resolved["action"] == "resolved"
    assert wrong["error"]["code"] == "signature_mismatch"  # type: ignore[index]


def test_make_run_migrates_serves_and_starts_the_jobs(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "VENV": str(Path(sys.executable).parent.parent),
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        "BRIDGE_INSTANCE_PATH": str(tmp_path / "instance"),
        "WEB_CONCURRENCY": "2",
    }
    log_path = tmp_path / "make-run.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}", process, seconds=120)
            # The jobs process starts beside gunicorn and may log a moment after it serves.
            deadline = time.monotonic() + 30
            while "pruned 0 deliveries" not in log_path.read_text(errors="replace"):
                assert time.monotonic() < deadline, "the jobs process did not start"
                time.sleep(0.2)
        finally:
            stop(process, group=True)
    output = log_path.read_text(errors="replace")
    assert "database is up to date" in output
    assert "scheduler started: prune_deliveries" in output
    assert "pruned 0 deliveries" in output
    assert "Listening at: http://127.0.0.1:" in output
    assert (tmp_path / "run.db").exists()
