"""A stateful fake of the parts of the Sentry API the bridge uses, served on loopback.

A real HTTP server (werkzeug) in a thread, so the bridge's requests.Session, timeouts,
headers and status handling are exercised for real. It keeps installations, single-use
grant codes, rotating refresh tokens, expiring access tokens, issues and events, and it
can be told to answer the next matching requests with a fault (429 with rate-limit
headers, 5xx, ...). Every request is recorded for assertions.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

CLIENT_ID = "fake-client-id-3f9a"
CLIENT_SECRET = "fake-client-secret-9c1d7e"
APP_UUID = "c2f5e8a1-9b3d-4f6e-8a7c-1d2e3f4a5b6c"


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: Any
    times: int


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    authorization: str | None
    body: Any


@dataclass
class FakeInstallation:
    uuid: str
    org_slug: str
    status: str = "pending"
    code: str | None = None


@dataclass
class FakeToken:
    installation_uuid: str
    expires_at: datetime


@dataclass
class FakeSentry:
    """State of the fake; tests change it directly and read what the bridge did."""

    token_lifetime: timedelta = timedelta(hours=8)
    installations: dict[str, FakeInstallation] = field(default_factory=dict)
    tokens: dict[str, FakeToken] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh → installation
    issues: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    events: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    used_codes: set[str] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock)
    base_url: str = ""

    # ------------------------------------------------------------ test controls

    def reset(self) -> None:
        with self.lock:
            self.installations.clear()
            self.tokens.clear()
            self.refresh_tokens.clear()
            self.issues.clear()
            self.events.clear()
            self.faults.clear()
            self.requests.clear()
            self.used_codes.clear()
            self.token_lifetime = timedelta(hours=8)

    def install(self, org_slug: str = "acme-gmbh", uuid: str | None = None) -> FakeInstallation:
        """A pending installation with a fresh grant code, as Sentry makes on install."""
        with self.lock:
            made = FakeInstallation(
                uuid=uuid or secrets.token_hex(16), org_slug=org_slug, code=secrets.token_hex(16)
            )
            self.installations[made.uuid] = made
            return made

    def issue_token(self, installation_uuid: str, lifetime: timedelta | None = None) -> str:
        """A token Sentry would have given (an internal integration's, say)."""
        with self.lock:
            token = f"sntrys_{secrets.token_hex(20)}"
            self.tokens[token] = FakeToken(
                installation_uuid, datetime.now(UTC) + (lifetime or timedelta(days=3650))
            )
            return token

    def expire_all_tokens(self) -> None:
        with self.lock:
            for token in self.tokens.values():
                token.expires_at = datetime.now(UTC) - timedelta(seconds=1)

    def add_issue(
        self, org_slug: str, issue: dict[str, Any], latest_event: dict[str, Any] | None = None
    ) -> None:
        with self.lock:
            self.issues[(org_slug, str(issue["id"]))] = issue
            if latest_event is not None:
                self.events[(org_slug, str(issue["id"]))] = latest_event

    def fail(
        self,
        method: str,
        path_pattern: str,
        status: int,
        headers: dict[str, str] | None = None,
        body: Any = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` matching requests with this status instead."""
        with self.lock:
            self.faults.append(
                Fault(
                    method.upper(),
                    re.compile(path_pattern),
                    status,
                    headers or {},
                    body if body is not None else {"detail": f"fake fault {status}"},
                    times,
                )
            )

    def calls(self, method: str, path_pattern: str) -> list[Recorded]:
        pattern = re.compile(path_pattern)
        with self.lock:
            return [r for r in self.requests if r.method == method and pattern.search(r.path)]

    # ------------------------------------------------------------ the WSGI app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        request = Request(environ)
        response = self._handle(request)
        return iter(response(environ, start_response))

    def _handle(self, request: Request) -> Response:
        raw = request.get_data()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self.lock:
            self.requests.append(
                Recorded(
                    request.method,
                    request.path,
                    request.query_string.decode(),
                    request.headers.get("Authorization"),
                    body,
                )
            )
            for fault in self.faults:
                if (
                    fault.times > 0
                    and fault.method == request.method
                    and fault.path.search(request.path)
                ):
                    fault.times -= 1
                    return _json(fault.body, fault.status, fault.headers)
            return self._route(request, body)

    def _route(self, request: Request, body: Any) -> Response:
        routes = (
            ("POST", r"/api/0/sentry-app-installations/([^/]+)/authorizations/", self._authorize),
            ("PUT", r"/api/0/sentry-app-installations/([^/]+)/", self._verify),
            ("GET", r"/api/0/organizations/([^/]+)/issues/([^/]+)/", self._issue),
            ("PUT", r"/api/0/organizations/([^/]+)/issues/([^/]+)/", self._update_issue),
            (
                "GET",
                r"/api/0/organizations/([^/]+)/issues/([^/]+)/events/latest/",
                self._latest_event,
            ),
        )
        for method, pattern, handler in routes:
            match = re.fullmatch(pattern, request.path)
            if match and request.method == method:
                return handler(request, body, *match.groups())  # type: ignore[operator]
        return _json({"detail": "The requested resource does not exist"}, 404)

    def _authorize(self, _request: Request, body: Any, installation_uuid: str) -> Response:
        form = body if isinstance(body, dict) else {}
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return _json({"detail": "Invalid client"}, 401)
        installation = self.installations.get(installation_uuid)
        if installation is None:
            return _json({"detail": "The requested resource does not exist"}, 404)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            code = form.get("code")
            if not code or code != installation.code or code in self.used_codes:
                return _json({"detail": "Invalid grant"}, 401)
            self.used_codes.add(code)
        elif grant_type == "refresh_token":
            if self.refresh_tokens.get(str(form.get("refresh_token"))) != installation_uuid:
                return _json({"detail": "Invalid refresh token"}, 401)
            # Rotation: the old refresh token and every token of the install stop working.
            del self.refresh_tokens[str(form["refresh_token"])]
            for token, held in list(self.tokens.items()):
                if held.installation_uuid == installation_uuid:
                    del self.tokens[token]
        else:
            return _json({"detail": "Invalid grant_type"}, 400)
        token = f"sntrys_{secrets.token_hex(20)}"
        refresh = secrets.token_hex(32)
        expires_at = datetime.now(UTC) + self.token_lifetime
        self.tokens[token] = FakeToken(installation_uuid, expires_at)
        self.refresh_tokens[refresh] = installation_uuid
        return _json(
            {
                "id": str(len(self.tokens)),
                "token": token,
                "refreshToken": refresh,
                "dateCreated": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "expiresAt": expires_at.isoformat().replace("+00:00", "Z"),
                "state": None,
                "application": {"id": "1", "uuid": APP_UUID},
            },
            201,
        )

    def _bearer(self, request: Request) -> FakeToken | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        held = self.tokens.get(header.removeprefix("Bearer "))
        if held is None or held.expires_at <= datetime.now(UTC):
            return None
        return held

    def _org_allowed(self, request: Request, org_slug: str) -> FakeToken | Response:
        held = self._bearer(request)
        if held is None:
            return _json({"detail": "Invalid token"}, 401)
        installation = self.installations.get(held.installation_uuid)
        if installation is not None and installation.org_slug != org_slug:
            return _json({"detail": "You do not have permission"}, 403)
        return held

    def _verify(self, request: Request, body: Any, installation_uuid: str) -> Response:
        held = self._bearer(request)
        if held is None or held.installation_uuid != installation_uuid:
            return _json({"detail": "Invalid token"}, 401)
        installation = self.installations[installation_uuid]
        if isinstance(body, dict) and body.get("status") == "installed":
            installation.status = "installed"
        return _json({"uuid": installation.uuid, "status": installation.status}, 200)

    def _issue(self, request: Request, _body: Any, org_slug: str, issue_id: str) -> Response:
        allowed = self._org_allowed(request, org_slug)
        if isinstance(allowed, Response):
            return allowed
        issue = self.issues.get((org_slug, issue_id))
        return _json(issue, 200) if issue else _json({"detail": "Issue not found"}, 404)

    def _update_issue(self, request: Request, body: Any, org_slug: str, issue_id: str) -> Response:
        allowed = self._org_allowed(request, org_slug)
        if isinstance(allowed, Response):
            return allowed
        issue = self.issues.get((org_slug, issue_id))
        if issue is None:
            return _json({"detail": "Issue not found"}, 404)
        if isinstance(body, dict) and "status" in body:
            issue["status"] = body["status"]
        return _json(issue, 200)

    def _latest_event(self, request: Request, _body: Any, org_slug: str, issue_id: str) -> Response:
        allowed = self._org_allowed(request, org_slug)
        if isinstance(allowed, Response):
            return allowed
        event = self.events.get((org_slug, issue_id))
        return _json(event, 200) if event else _json({"detail": "Event not found"}, 404)


def _json(document: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(document), status=status, headers=headers or {}, mimetype="application/json"
    )


@dataclass
class RunningFake:
    state: FakeSentry
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return self.state.base_url

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.server.server_close()


def start_fake_sentry() -> RunningFake:
    """Serve a fresh FakeSentry on 127.0.0.1 (a free port) in a daemon thread."""
    state = FakeSentry()
    server = make_server("127.0.0.1", 0, state, threaded=True)
    state.base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="fake-sentry", daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    return RunningFake(state, server, thread)
