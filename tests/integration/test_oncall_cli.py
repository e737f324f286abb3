"""The on-call commands print JSON and change the database the app uses (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from app.cli import main
from app.extensions import Bridge
from tests.support.databases import cli_env
from tests.support.oncall import make_people


@pytest.fixture
def bridge_cli(bridge: Bridge, encryption_key: str, tmp_path: Path) -> Any:
    env = cli_env(bridge.database.url, encryption_key, tmp_path)
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> Any:
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        if not ok:
            assert result.exit_code == 1, result.output
            return result.output
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    with bridge.database.transaction() as session:
        make_people(session, datetime.now(UTC), "a@x.example", "b@x.example", "c@x.example")
    return run


def test_schedule_create_override_and_who(bridge_cli: Any) -> None:
    created = bridge_cli(
        "schedule", "create", "primary", "--timezone", "Europe/Berlin",
        "--rotation", "weekly", "--handoff", "mon 09:00",
        "--members", "a@x.example,b@x.example", "--start", "2025-03-17",
    )  # fmt: skip
    assert created["layers"][0]["members"] == ["a@x.example", "b@x.example"]
    assert created["layers"][0]["handoff"] == "mon 09:00"
    assert created["feed_url"].startswith("https://bridge.example.com/calendars/schedules/")

    # 17 March 2025 was a Monday: a from 09:00 Berlin (08:00 UTC) for a week.
    who = bridge_cli("schedule", "who", "primary", "--at", "2025-03-18T12:00:00")
    assert who == {
        "user": "a@x.example",
        "from": "2025-03-17T08:00:00+00:00",
        "until": "2025-03-24T08:00:00+00:00",
        "source": "layer",
    }
    gap = bridge_cli("schedule", "who", "primary", "--at", "2025-03-17T08:59:00")
    assert gap["user"] is None and gap["from"] is None

    bridge_cli(
        "schedule", "override", "primary", "--user", "c@x.example",
        "--from", "2025-03-18T10:00", "--until", "2025-03-18T14:00",
    )  # fmt: skip
    covered = bridge_cli("schedule", "who", "primary", "--at", "2025-03-18T12:00:00+01:00")
    assert covered["user"] == "c@x.example"
    assert covered["from"] == "2025-03-18T09:00:00+00:00"


def test_shift_hours_rotation_and_errors_exit_1(bridge_cli: Any) -> None:
    created = bridge_cli(
        "schedule", "create", "follow", "--timezone", "UTC", "--shift-hours", "12",
        "--handoff", "08:00", "--members", "a@x.example,b@x.example",
    )  # fmt: skip
    assert created["layers"][0]["shift_unit"] == "hours"
    assert created["layers"][0]["shift_count"] == 12

    message = bridge_cli(
        "schedule", "create", "bad", "--timezone", "Nowhere/City", "--members", "a@x.example",
        ok=False,
    )  # fmt: skip
    assert "time zone" in message
    assert "No schedule" in bridge_cli("schedule", "who", "missing", ok=False)


def test_policy_create_and_service_update(bridge_cli: Any) -> None:
    bridge_cli(
        "schedule", "create", "primary", "--timezone", "UTC", "--members", "a@x.example"
    )  # fmt: skip
    bridge_cli("service", "create", "Payments")
    policy = bridge_cli(
        "policy", "create", "default", "--step", "0:schedule:primary",
        "--step", "15:user:b@x.example", "--step", "30:channel:ops-slack", "--repeat", "2",
    )  # fmt: skip
    assert policy["steps"] == ["0:schedule:primary", "15:user:b@x.example", "30:channel:ops-slack"]
    assert policy["repeat"] == 2

    updated = bridge_cli(
        "service", "update", "Payments", "--policy", "default",
        "--ack-timeout-minutes", "30", "--page-min-severity", "critical",
    )  # fmt: skip
    assert updated["escalation_policy_id"] == policy["id"]
    assert (updated["ack_timeout_minutes"], updated["page_min_severity"]) == (30, "critical")
    detached = bridge_cli("service", "update", "Payments", "--policy", "none")
    assert detached["escalation_policy_id"] is None
    assert detached["page_min_severity"] == "critical"
    assert "MINUTES:KIND:NAME" in bridge_cli(
        "policy", "create", "x", "--step", "soon:u:a", ok=False
    )


def test_contact_add_list_verify_never_prints_the_url(bridge_cli: Any) -> None:
    added = bridge_cli(
        "contact", "add", "--user", "a@x.example", "--apprise", "pover://user@s3cr3ttoken"
    )
    assert "s3cr3t" not in json.dumps(added)
    assert added["pageable"] is False

    listed = bridge_cli("contact", "list", "--user", "a@x.example")
    assert [m["kind"] for m in listed] == ["email", "apprise"]

    verified = bridge_cli("contact", "verify", str(added["id"]))
    assert verified["verified"] is True and verified["pageable"] is True
