"""The ceiling: the cheapest endpoint that stores a delivery in PostgreSQL before answering.

Not a receiver. It checks the HMAC, parses the JSON, INSERTs the delivery row (one
autocommit statement through psycopg, no ORM, no incident) and answers 202. Every design
the bridge is allowed (SPEC 5 answers with the action and the incident; the standards say
every delivery is stored) does at least this much per delivery, so its throughput, as a
ratio to the bare-Flask baseline, is the most any such design can reach on this machine.
Served by the same gunicorn config as the bridge:

    BENCH_CEILING_SECRET=... BENCH_CEILING_DSN=postgresql://... \\
        gunicorn -c config/gunicorn.conf.py bench.ceiling_app:app

With BENCH_CEILING_SQLITE=<database file> instead of the DSN, the same INSERT goes to the
bridge's SQLite database (WAL, as the bridge opens it; one connection per thread, each
INSERT its own transaction): SQLite's ceiling.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
from flask import Flask, Response, jsonify, request

app = Flask(__name__)
_SECRET = os.environ.get("BENCH_CEILING_SECRET", "").encode()
_DSN = os.environ.get("BENCH_CEILING_DSN", "")
_INSERT = (
    "INSERT INTO deliveries (integration_id, received_at, request_id, hook_resource, "
    "hook_timestamp, content_type, user_agent, body, body_size, signature_outcome, decision, "
    "http_status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'valid', 'stored', 202) "
    "RETURNING id"
)
_SQLITE = os.environ.get("BENCH_CEILING_SQLITE", "")
_connections: dict[int, psycopg.Connection] = {}
_lock = threading.Lock()
_per_thread = threading.local()


def _connection() -> Any:
    if _SQLITE:
        # One connection per thread (sqlite3's rule), autocommit: each INSERT commits.
        held = getattr(_per_thread, "sqlite", None)
        if held is None:
            held = sqlite3.connect(_SQLITE, timeout=30, isolation_level=None)
            held.execute("PRAGMA journal_mode=WAL")
            held.execute("PRAGMA synchronous=NORMAL")
            _per_thread.sqlite = held
        return held
    # One connection per worker process, made after gunicorn forks; its threads share it
    # (psycopg serialises them), as the bridge's pool of a few would.
    with _lock:
        found = _connections.get(os.getpid())
        if found is None:
            found = _connections[os.getpid()] = psycopg.connect(_DSN, autocommit=True)
    return found


@app.post("/api/integrations/sentry")
def receive() -> tuple[Response, int]:
    body = request.get_data()
    expected = hmac.new(_SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("Sentry-Hook-Signature", "")):
        return jsonify({"error": "signature"}), 401
    payload = json.loads(body)
    headers = request.headers
    row = (
        _connection()
        .execute(
            _INSERT.replace("%s", "?") if _SQLITE else _INSERT,
            (
                request.args["integrationId"],
                datetime.now(UTC),
                headers.get("Request-ID"),
                headers.get("Sentry-Hook-Resource"),
                headers.get("Sentry-Hook-Timestamp"),
                headers.get("Content-Type"),
                headers.get("User-Agent"),
                body,
                len(body),
            ),
        )
        .fetchone()
    )
    assert row is not None
    return jsonify({"action": "stored", "delivery_id": row[0], "keys": len(payload)}), 202


@app.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})
