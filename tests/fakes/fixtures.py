"""pytest fixtures for the outbound-channel fakes; a conftest imports the ones it needs:

    from tests.fakes.fixtures import webhook_receiver, fake_pagerduty  # noqa: F401

Each fake is a real server on 127.0.0.1 on a free port, fresh for every test, stopped
afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.smtp import FakeSmtpServer, start_smtp_server
from tests.fakes.webhook_receiver import WebhookReceiver, start_webhook_receiver
from tests.support.tls import Certificate, make_certificate


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = start_webhook_receiver()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def fake_pagerduty() -> Iterator[FakePagerDuty]:
    fake = FakePagerDuty()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def trusted_certificate(
    tls_certificate: Certificate, monkeypatch: pytest.MonkeyPatch
) -> Certificate:
    """The test certificate as the only CA clients trust (OpenSSL reads SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_certificate.cert_path))
    return tls_certificate


@pytest.fixture
def smtp_server() -> Iterator[FakeSmtpServer]:
    server = start_smtp_server("smtp")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def starttls_smtp_server(tls_certificate: Certificate) -> Iterator[FakeSmtpServer]:
    server = start_smtp_server(
        "smtp+starttls", tls_certificate.server_context(), users={"bridge": "p@ss w/rd:1"}
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtps_server(tls_certificate: Certificate) -> Iterator[FakeSmtpServer]:
    server = start_smtp_server(
        "smtps", tls_certificate.server_context(), users={"bridge@example.com": "s3cr3t/+?#pw"}
    )
    try:
        yield server
    finally:
        server.stop()
