"""The loopback fakes every channel test here talks to (tests/fakes/fixtures.py)."""

from tests.fakes.fixtures import (  # noqa: F401 - pytest finds fixtures by name
    fake_pagerduty,
    smtp_server,
    smtps_server,
    starttls_smtp_server,
    tls_certificate,
    trusted_certificate,
    webhook_receiver,
)
