"""Driving the server-rendered pages through Flask's test client: CSRF tokens, logging in."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

PASSWORD = "correct horse battery staple"  # every person the tests make has this one
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str) -> str:
    """The CSRF token of the form on the page at `path`."""
    match = CSRF.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def log_in(client: FlaskClient, email: str, password: str = PASSWORD) -> int:
    """Submit the login form; the status code of its answer (302 when logged in)."""
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    return response.status_code
