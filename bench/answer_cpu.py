"""CPU per answer, in-process: what a delivery costs the app when it is kept in the spool
(the overload path) or applied, without gunicorn, sockets or a load generator in the way.

    .venv/bin/python -m bench.answer_cpu            # SQLite, 3,000 spooled deliveries
    BENCH_ANSWER_DB=postgres BENCH_ANSWER_PROFILE=1 .venv/bin/python -m bench.answer_cpu
    BENCH_ANSWER_MODE=applied .venv/bin/python -m bench.answer_cpu  # the applied path

A fresh database and instance folder; one signed integration; each delivery a different
body of the overload scenario's shape, called through the WSGI app with the environ the
gunicorn worker gives it while more connections wait to be accepted than
BRIDGE_ADMISSION_BACKLOG allows (so it is spooled at once, `spooled_backlog`). Printed: the
process CPU per delivery, and with BENCH_ANSWER_PROFILE=1 the functions that take it
(cProfile, cumulative). The bare Flask endpoint through the same harness is printed beside:
the cost of any Flask answer at all.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg
from cryptography.fernet import Fernet
from werkzeug.test import EnvironBuilder

from bench.payloads import signed_bodies
from tests.support.databases import with_search_path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
COUNT = int(os.environ.get("BENCH_ANSWER_COUNT", "3000"))


def _bridge(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "bridge"), *args], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout


def _environs(
    integration: str, secret: str, count: int, extra: dict[str, Any]
) -> list[dict[str, Any]]:
    made = []
    bodies = signed_bodies(secret, 100, -(-count // 100))
    for number, signed in zip(range(count), bodies, strict=False):
        builder = EnvironBuilder(
            path="/api/integrations/sentry",
            method="POST",
            query_string={"integrationId": integration},
            data=signed.body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "sentry-bench/python",
                "Request-ID": f"{number:08x}-0000-4000-8000-{secrets.token_hex(6)}",
                "Sentry-Hook-Resource": "issue",
                "Sentry-Hook-Timestamp": str(int(time.time())),
                "Sentry-Hook-Signature": signed.signature,
            },
        )
        environ = builder.get_environ()
        environ.update(extra)
        made.append(environ)
    return made


def _cpu_per_call(app: Callable[..., Iterable[bytes]], environs: list[dict[str, Any]]) -> float:
    statuses: dict[str, int] = {}

    def start_response(status: str, _headers: Any, _exc_info: Any = None) -> None:
        statuses[status] = statuses.get(status, 0) + 1

    started = time.process_time()
    for environ in environs:
        for _chunk in app(environ, start_response):
            pass
    spent = time.process_time() - started
    print(f"    statuses {statuses}")
    return spent / len(environs)


def main() -> None:
    kind = os.environ.get("BENCH_ANSWER_DB", "sqlite")
    workdir = Path(tempfile.mkdtemp(prefix="bench-answer-"))
    if kind == "postgres":
        # A schema of its own in the machine's PostgreSQL (left behind: a bench run's).
        schema = f"bench_answer_{secrets.token_hex(4)}"
        with psycopg.connect(POSTGRES.replace("+psycopg", ""), autocommit=True) as connection:
            connection.execute(f"CREATE SCHEMA {schema}")
        url = with_search_path(POSTGRES, schema)
    else:
        url = f"sqlite:///{workdir / 'bridge.db'}"

    env = {
        **os.environ,
        "DATABASE_URL": url,
        "BRIDGE_INSTANCE_PATH": str(workdir / "instance"),
        "BRIDGE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "BRIDGE_PUBLIC_URL": "http://127.0.0.1:8000",
        "BRIDGE_RATE_LIMIT_PER_MINUTE": "100000000",
        "LOG_LEVEL": "WARNING",
    }
    _bridge(env, "db", "upgrade")
    _bridge(env, "service", "create", "Overload")
    secret = secrets.token_hex(32)
    made = json.loads(
        _bridge(env, "integration", "create", "--service", "overload", "--secret", secret)
    )
    os.environ.update(env)
    from app.web.admission import ARRIVED_AT_KEY, LISTEN_BACKLOG_KEY
    from wsgi import app

    overloaded = {LISTEN_BACKLOG_KEY: lambda: 1_000_000}
    # Warm: applied (no backlog), which loads the worker's copy of the integration: with
    # it a spooled delivery's HMAC is checked and its rate-limit budget spent.
    _cpu_per_call(app, _environs(made["id"], secret, 20, {ARRIVED_AT_KEY: time.time()}))
    _cpu_per_call(app, _environs(made["id"], secret, 50, overloaded))
    applied = os.environ.get("BENCH_ANSWER_MODE", "spooled") == "applied"
    environs = _environs(made["id"], secret, COUNT, {} if applied else overloaded)
    for environ in environs:
        environ[ARRIVED_AT_KEY] = time.time() + 3600  # never late
    what = "applied (one thread: no group commit)" if applied else "spooled"
    print(f"{kind}: {COUNT} {what} deliveries through the bridge's WSGI app")
    if os.environ.get("BENCH_ANSWER_PROFILE"):
        profiler = cProfile.Profile(time.process_time)  # CPU, not the fsyncs' waits
        profiler.enable()
        per_call = _cpu_per_call(app, environs)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
        print(out.getvalue())
    else:
        per_call = _cpu_per_call(app, environs)
    print(f"  {'applied' if applied else 'spooled'} answer  {per_call * 1000:.3f} ms CPU each")

    from bench.bare_app import app as bare

    print(
        f"  bare Flask      {_cpu_per_call(bare, _environs('x', secret, COUNT, {})) * 1000:.3f} ms"
    )


if __name__ == "__main__":
    main()
