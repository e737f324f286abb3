"""What the README promises works as written: `make run` and the curl examples."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.ports import free_port
from tests.support.stack import ROOT, Stack, stop, wait_until_healthy

pytestmark = pytest.mark.e2e
EXAMPLE = re.compile(r"<!-- example: ([\w-]+) -->\n```sh\n(.*?)```", re.DOTALL)
IN_ORDER = ["setup", "issue", "event", "signed", "manage", "api", "notify", "notify-api"]


def readme_examples() -> dict[str, str]:
    return dict(EXAMPLE.findall((ROOT / "README.md").read_text(encoding="utf-8")))


def documents(output: str) -> list[Any]:
    """Every JSON document a block printed, one after another (tables are skipped)."""
    found, decoder, at = [], json.JSONDecoder(), 0
    while at < len(output):
        start = min((i for i in (output.find("{", at), output.find("[", at)) if i >= 0), default=-1)
        if start < 0:
            break
        try:
            document, at = decoder.raw_decode(output, start)
        except json.JSONDecodeError:
            at = start + 1
            continue
        found.append(document)
    return found


class Shell:
    """The README's blocks run one after another as in one terminal: each starts with the
    variables and functions the blocks before it left (set -a exports every assignment)."""

    def __init__(self, server: Stack, state: Path) -> None:
        self.server, self.state = server, state
        state.write_text("", encoding="utf-8")

    def run(self, script: str, **env: str) -> str:
        wrapped = (
            f"set -a; source {self.state}\n{script}\n"
            f"{{ export -p; declare -f; }} > {self.state}.next && mv {self.state}.next {self.state}"
        )
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", wrapped],
            env={**self.server.env, "BRIDGE": self.server.base_url, **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{script}\n---\n{done.stderr}"
        return done.stdout


def test_readme_has_the_examples_in_order() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert [name for name, _ in EXAMPLE.findall(text)] == IN_ORDER


def test_readme_has_no_path_a_clone_lacks() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        assert (ROOT / target).exists(), target
    for path in re.findall(r"`((?:\.ci|app|config|docs|tests|bench)/[\w./-]+)`", text):
        assert (ROOT / path).exists(), path
    assert not re.search(r"(?<!\.)\.\./", text)  # no path out of the clone (not "...")


# The README's flow, not the database, is under test: SQLite (test_server.py covers both).
@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_readme_examples_run_in_order_on_a_fresh_database(server: Stack, tmp_path: Path) -> None:
    examples = readme_examples()
    shell = Shell(server, tmp_path / "readme-shell-state")
    outputs: dict[str, str] = {}
    for name in IN_ORDER:
        outputs[name] = shell.run(examples[name], SENTRY_CLIENT_SECRET="readme-client-secret")
        if name == "issue":  # "Sending it again answers deduplicated"
            again = documents(shell.run(examples["issue"]))[0]
        if name == "signed":  # the same request signed with another secret: refused
            signing = "BODY=" + examples["signed"].split("BODY=", 1)[1]
            wrong = documents(shell.run("SECRET=nope\n" + signing))

    everything = [doc for output in outputs.values() for doc in documents(output)]
    refusals = [doc for doc in everything if isinstance(doc, dict) and "error" in doc]
    assert refusals == [], refusals  # no 409 (nor any other error) on the way
    first = documents(outputs["issue"])[0]
    event = documents(outputs["event"])[0]
    [resolved] = documents(outputs["signed"])
    assert (first["action"], first["dedup_key"]) == ("triggered", "sentry-1234567")
    assert again["action"] == "deduplicated"
    assert again["incident"]["event_count"] == 2
    assert event["action"] == "triggered"
    assert event["incident"]["severity"] == "critical"
    assert event["dedup_key"] == "sentry-9f1c2d3e4b5a69788766554433221100"
    assert resolved["action"] == "resolved"
    assert wrong[0]["error"]["code"] == "signature_mismatch"

    # The pasted Client Secret went in on stdin and never came back out.
    assert "readme-client-secret" not in outputs["manage"]
    listed = server.bridge_json("integration", "list", "--json")
    assert [(i["name"], i["has_secret"]) for i in listed] == [
        ("Sentry checkout", False),
        ("Sentry signed", False),  # remove-secret, the last step of "manage"
        ("Sentry app", True),
    ]
    acknowledged = documents(outputs["api"])
    assert any(
        isinstance(doc, dict) and doc.get("status") == "acknowledged" for doc in acknowledged
    ), acknowledged


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
