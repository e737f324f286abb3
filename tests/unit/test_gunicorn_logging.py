"""The access logger (config/gunicorn_logging.py) writes the very line gunicorn's own
logger writes for the production format, while building only the atoms it names."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger, SafeAtoms

from config.gunicorn_logging import AccessLogger

CONF = Path(__file__).resolve().parents[2] / "config" / "gunicorn.conf.py"


def _config(access_log_format: str) -> Config:
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", access_log_format)
    return cfg


def _production_format() -> str:
    """The format in config/gunicorn.conf.py, read without running it (running it would
    set PROMETHEUS_MULTIPROC_DIR in the test process)."""
    for node in ast.parse(CONF.read_text()).body:
        if (
            isinstance(node, ast.Assign)
            and getattr(node.targets[0], "id", "") == "access_log_format"
        ):
            return str(ast.literal_eval(node.value))
    raise AssertionError("config/gunicorn.conf.py sets no access_log_format")


def _exchange(user_agent: str = 'curl/8.5 "quoted"') -> tuple[Any, Any, dict[str, Any], Any]:
    resp = SimpleNamespace(
        status="202 ACCEPTED",
        sent=187,
        headers=[("Content-Type", "application/json"), ("X-Request-ID", "req-42")],
    )
    req = SimpleNamespace(headers=[("HOST", "bridge"), ("USER-AGENT", user_agent)])
    environ = {
        "REMOTE_ADDR": "10.0.0.7",
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/api/integrations/sentry?integrationId=secret-id",
        "PATH_INFO": "/api/integrations/sentry",
        "QUERY_STRING": "integrationId=secret-id",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_USER_AGENT": user_agent,
    }
    return resp, req, environ, timedelta(seconds=1, microseconds=234_567)


def _line(logger: Logger, cfg: Config, exchange: tuple[Any, Any, dict[str, Any], Any]) -> str:
    return str(cfg.access_log_format % SafeAtoms(logger.atoms(*exchange)))


@pytest.mark.parametrize(
    "access_log_format",
    [
        _production_format(),
        '%(h)s %(m)s %(U)s %(q)s %(H)s %(s)s %(B)s "%(f)s" "%(a)s" %(M)s %(p)s',
        "%(s)s %({content-type}o)s %({X-Request-ID}o)s %({missing}o)s",
    ],
)
def test_the_line_is_gunicorns_own(access_log_format: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Logger, "now", lambda self: "[02/Dec/2026:13:00:00 +0000]")
    cfg = _config(access_log_format)
    ours, theirs = AccessLogger(cfg), Logger(cfg)
    exchange = _exchange()

    assert _line(ours, cfg, exchange) == _line(theirs, cfg, exchange)
    # ...from the atoms the format names, not every header and environ variable.
    assert not any(key.endswith("}e") or key.endswith("}i") for key in ours.atoms(*exchange))


def test_the_production_line_keeps_the_query_string_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Logger, "now", lambda self: "[02/Dec/2026:13:00:00 +0000]")
    cfg = _config(_production_format())
    line = _line(AccessLogger(cfg), cfg, _exchange())
    assert "secret-id" not in line
    assert '"request": "POST /api/integrations/sentry"' in line
    assert '"request_id": "req-42"' in line and '"ms": 1234' in line


def test_a_format_naming_other_atoms_falls_back_to_gunicorns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Logger, "now", lambda self: "[02/Dec/2026:13:00:00 +0000]")
    cfg = _config("%(r)s %({host}i)s %({remote_addr}e)s %(D)s")
    ours, theirs = AccessLogger(cfg), Logger(cfg)
    exchange = _exchange()
    line = _line(ours, cfg, exchange)
    assert line == _line(theirs, cfg, exchange)
    assert line.startswith("POST /api/integrations/sentry?integrationId=secret-id HTTP/1.1 bridge")
