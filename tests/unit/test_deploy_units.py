"""The systemd units in deploy/systemd start commands that exist, with files that exist,
and their environment example names only variables the bridge reads."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
INSTALLED = "/opt/sentry-incident-bridge"
SHARED = (
    "DATABASE_URL",
    "BRIDGE_ENCRYPTION_KEYS",
    "BRIDGE_SECRET_KEY",
    "BRIDGE_PUBLIC_URL",
    "BRIDGE_RATE_LIMIT_URL",
)


def read_unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


def test_there_are_web_jobs_and_migrate_units() -> None:
    assert {path.name for path in UNITS} == {
        "bridge-web.service",
        "bridge-jobs.service",
        "bridge-migrate.service",
    }


@pytest.mark.parametrize("unit", UNITS, ids=lambda path: path.name)
def test_exec_start_runs_a_command_of_this_checkout(unit: Path) -> None:
    service = read_unit(unit)["Service"]
    command = shlex.split(service["ExecStart"])
    assert service["WorkingDirectory"] == INSTALLED
    assert command[0].startswith(f"{INSTALLED}/.venv/bin/")
    program = command[0].rsplit("/", 1)[1]
    if program == "gunicorn":
        config = command[command.index("-c") + 1]
        assert (ROOT / config).is_file()
        module, attribute = command[-1].split(":")
        assert attribute in (ROOT / f"{module}.py").read_text()
    else:
        assert program == "bridge"  # [project.scripts] in pyproject.toml
        assert 'bridge = "app.cli:main"' in (ROOT / "pyproject.toml").read_text()
        help_run = CliRunner().invoke(main, [*command[1:], "--help"])
        assert help_run.exit_code == 0, help_run.output
    assert service["EnvironmentFile"] == "/etc/sentry-incident-bridge/bridge.env"


def test_web_and_jobs_stop_on_sigterm_within_the_graceful_timeouts() -> None:
    for name in ("bridge-web.service", "bridge-jobs.service"):
        service = read_unit(ROOT / "deploy" / "systemd" / name)["Service"]
        assert service["KillSignal"] == "SIGTERM"
        assert int(service["TimeoutStopSec"]) > 20  # gunicorn's graceful_timeout
        assert service["Restart"] == "always"
    web = read_unit(ROOT / "deploy" / "systemd" / "bridge-web.service")
    assert "bridge-jobs.service" in web["Unit"]["Wants"]  # a web node's spool is drained


def test_the_environment_example_names_only_known_variables_and_every_shared_one() -> None:
    example = (ROOT / "deploy" / "systemd" / "bridge.env.example").read_text()
    names = re.findall(r"^([A-Z_][A-Z0-9_]*)=", example, flags=re.MULTILINE)
    known = set(
        re.findall(r"^([A-Z_][A-Z0-9_]*)=", (ROOT / "config" / "example.env").read_text(), re.M)
    )
    assert names
    assert set(names) <= known, set(names) - known
    assert set(SHARED) <= set(names)
