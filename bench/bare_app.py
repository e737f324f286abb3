"""The baseline: a bare Flask endpoint that reads the body and answers 202.

Served by the same gunicorn config as the bridge (`gunicorn -c config/gunicorn.conf.py
bench.bare_app:app`), so the ratio of the two throughputs is the cost of the bridge itself:
routing through its blueprints, authentication, parsing, and the database transaction.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.post("/api/integrations/sentry")
def receive() -> tuple[Response, int]:
    body = request.get_data()
    return jsonify({"action": "accepted", "bytes": len(body)}), 202


@app.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})
