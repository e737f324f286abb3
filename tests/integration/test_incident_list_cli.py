"""`bridge incident list`: statuses (open too), sorts, and aligned columns with a header."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient

from app.cli import main
from app.extensions import Bridge
from app.services.accounts import Role
from tests.support.api import Caller, Make, _token, trigger


@pytest.fixture
def cli(bridge: Bridge, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    settings = bridge.settings
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BRIDGE_ENCRYPTION_KEYS", ",".join(settings.encryption_keys))
    monkeypatch.setenv("BRIDGE_INSTANCE_PATH", str(settings.instance_path))

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return run


@pytest.fixture
def three(client: FlaskClient, bridge: Bridge, make_integration: Make) -> dict[str, int]:
    """warning (oldest), fatal, then info (newest); the fatal one acknowledged."""
    integration = make_integration(service="Payments")
    ids = {
        issue: trigger(client, integration, issue, f"Problem {issue}", level)["incident"]["id"]
        for issue, level in (("w", "warning"), ("f", "fatal"), ("i", "info"))
    }
    responder = Caller(client, _token(bridge, "r@x.io", Role.RESPONDER))
    assert responder.post(f"/api/incidents/{ids['f']}/acknowledge").status_code == 200
    return ids


def _json(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


def test_json_list_is_newest_first_and_takes_open_and_a_sort(
    cli: Callable[..., Result], three: dict[str, int]
) -> None:
    def keys(*args: str) -> list[str]:
        return [item["dedup_key"] for item in _json(cli("incident", "list", "--json", *args))]

    assert keys() == ["sentry-i", "sentry-f", "sentry-w"]
    assert keys("--status", "open") == ["sentry-i", "sentry-f", "sentry-w"]
    assert keys("--status", "triggered") == ["sentry-i", "sentry-w"]
    assert keys("--status", "acknowledged") == ["sentry-f"]
    assert keys("--sort", "-severity") == ["sentry-f", "sentry-w", "sentry-i"]
    assert keys("--sort", "urgency") == ["sentry-w", "sentry-i", "sentry-f"]
    assert keys("--sort", "id", "--service", "payments") == ["sentry-w", "sentry-f", "sentry-i"]


def test_text_list_has_a_header_and_aligned_columns(
    cli: Callable[..., Result], three: dict[str, int]
) -> None:
    result = cli("incident", "list")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "ID", "STATUS", "SEVERITY", "EVENTS", "LAST", "EVENT", "(UTC)", "SERVICE", "DEDUP",
        "KEY", "TITLE",
    ]  # fmt: skip
    assert len(lines) == 4
    assert [line.split()[2] for line in lines[1:]] == ["info", "critical", "warning"]
    # Every column starts at the same place on every line.
    for header in ("STATUS", "SEVERITY", "SERVICE", "DEDUP KEY", "TITLE"):
        column = lines[0].index(header)
        for line in lines[1:]:
            assert line[column - 1] == " " and line[column] != " ", (header, line)
    assert lines[1].rstrip().endswith("Problem i")


def test_text_list_says_when_nothing_matches_and_names_an_unknown_service(
    cli: Callable[..., Result], three: dict[str, int]
) -> None:
    empty = cli("incident", "list", "--status", "resolved")
    unknown = cli("incident", "list", "--service", "nope")
    bad = cli("incident", "list", "--status", "burning")

    assert empty.exit_code == 0 and empty.stdout.strip() == "No incidents."
    assert unknown.exit_code == 1 and "No service named 'nope'" in unknown.output
    assert bad.exit_code == 2 and "open" in bad.output
