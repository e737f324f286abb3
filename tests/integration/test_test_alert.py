"""The admin's test-alert button (issue 13): it posts to BRIDGE_PUBLIC_URL or to this
server's own loopback address, never to the request's Host, follows no redirect, and the
page shows the status code, not what the endpoint answered."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask.testing import FlaskClient

from app.domain.lifecycle import HumanAction
from app.extensions import Bridge
from app.services.accounts import Role, create_user
from app.services.alert_probe import sample_delivery
from app.services.incidents import act_on_incident
from tests.support.integrations import MadeIntegration
from tests.support.pages import PASSWORD, csrf_token, log_in

Make = Callable[..., MadeIntegration]
REMOTE_BODY = b"REMOTE-BODY-THAT-MUST-NOT-SHOW"


@dataclass
class Endpoint:
    """An HTTP server on loopback that records what reached it and answers as told."""

    port: int = 0
    status: int = 202
    location: str | None = None
    received: list[str] = field(default_factory=list)


def _serve(endpoint: Endpoint) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            endpoint.received.append(self.path)
            self.send_response(endpoint.status)
            if endpoint.location:
                self.send_header("Location", endpoint.location)
            self.send_header("Content-Length", str(len(REMOTE_BODY)))
            self.end_headers()
            self.wfile.write(REMOTE_BODY)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def endpoints() -> Iterator[Callable[[], Endpoint]]:
    servers: list[ThreadingHTTPServer] = []

    def start() -> Endpoint:
        endpoint = Endpoint()
        servers.append(_serve(endpoint))
        return endpoint

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def press_the_button(
    client: FlaskClient, bridge: Bridge, integration: MadeIntegration, own: Endpoint, host: str
) -> str:
    """The button pressed with `host` as the request's Host; the page shown after it."""
    with bridge.database.transaction() as session:
        create_user(session, "admin@example.com", PASSWORD, Role.ADMIN, datetime.now(UTC))
    log_in(client, "admin@example.com")
    token = csrf_token(client, "/admin/integrations")
    # The test client keeps cookies per host: the same login, sent to the forged Host.
    cookie = client.get_cookie("session")
    assert cookie is not None
    client.set_cookie("session", cookie.value, domain=host.split(":")[0])
    original = bridge.settings
    # This server listens on the loopback port `own` stands for; no public URL is set.
    bridge.settings = replace(original, public_base_url=None, host="0.0.0.0", port=own.port)  # noqa: S104
    try:
        response = client.post(
            f"/admin/integrations/{integration.id}/test-alert",
            data={"csrf_token": token},
            headers={"Host": host},
        )
    finally:
        bridge.settings = original
    return client.get(response.headers["Location"], headers={"Host": host}).get_data(as_text=True)


def test_the_test_alert_goes_to_this_server_never_to_the_requests_host(
    client: FlaskClient, bridge: Bridge, make_integration: Make, endpoints: Callable[[], Endpoint]
) -> None:
    integration = make_integration(secret="s3cr3t")
    own, elsewhere = endpoints(), endpoints()

    page = press_the_button(client, bridge, integration, own, f"127.0.0.1:{elsewhere.port}")

    assert elsewhere.received == []
    assert own.received == [f"/api/integrations/sentry?integrationId={integration.id}"]
    assert "Test alert accepted (202)" in page


def test_the_test_alert_follows_no_redirect(
    client: FlaskClient, bridge: Bridge, make_integration: Make, endpoints: Callable[[], Endpoint]
) -> None:
    integration = make_integration(secret="s3cr3t")
    own, elsewhere = endpoints(), endpoints()
    own.status, own.location = 307, f"http://127.0.0.1:{elsewhere.port}/collect"

    page = press_the_button(client, bridge, integration, own, "localhost")

    assert len(own.received) == 1
    assert elsewhere.received == []  # the signed body went nowhere else
    assert "Test alert refused (307)" in page


def test_the_page_shows_the_status_not_the_remote_body(
    client: FlaskClient, bridge: Bridge, make_integration: Make, endpoints: Callable[[], Endpoint]
) -> None:
    integration = make_integration(secret="s3cr3t")
    own = endpoints()
    own.status = 400

    page = press_the_button(client, bridge, integration, own, "localhost")

    assert "Test alert refused (400)" in page
    assert REMOTE_BODY.decode() not in page


def test_a_test_alert_after_the_test_incident_was_resolved_opens_it_again(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    """A repeated Sentry `issue.created` never reopens (issue 12), so the sample is an
    `issue.unresolved`: the admin's second test alert must still be seen."""
    integration = make_integration(secret="s3cr3t")
    start = datetime.now(UTC) - timedelta(minutes=10)

    def send(at: datetime) -> dict[str, object]:
        body, headers = sample_delivery(integration.id, integration.secret, at)
        headers["Sentry-Hook-Timestamp"] = str(int(at.timestamp()))
        answer = client.post(integration.url, data=body, headers=headers).get_json()
        assert isinstance(answer, dict)
        return answer

    first = send(start)
    incident = first["incident"]
    assert isinstance(incident, dict)
    with bridge.database.transaction() as session:
        act_on_incident(
            session, int(incident["id"]), HumanAction.RESOLVE, "admin@example.com",
            start + timedelta(minutes=1),
        )  # fmt: skip
    second = send(start + timedelta(minutes=2))

    assert first["action"] == "triggered"
    assert second["action"] == "reopened"
