"""The email adapter against a real SMTP server (aiosmtpd) on loopback: plain,
STARTTLS and SMTPS with a certificate made for the test."""

from __future__ import annotations

import logging
import time

import pytest

from app import channels
from app.channels.base import ChannelSettings, ChannelTarget
from tests.fakes.smtp import FakeSmtpServer
from tests.support.channels import (
    channel_settings,
    channel_test_message,
    digest_message,
    incident_message,
)
from tests.support.ports import free_port
from tests.support.tls import Certificate

TO = ("oncall@example.com", "lead@example.com")
SENDER = "Sentry Incident Bridge <bridge@example.com>"


def mail(*recipients: str) -> ChannelTarget:
    return ChannelTarget("email", "on call", recipients=recipients or TO)


def settings_for(
    server: FakeSmtpServer, url: str | None = None, **changes: object
) -> ChannelSettings:
    return channel_settings(smtp_url=url or server.url(), smtp_from=SENDER, **changes)


def test_incident_mail_has_subject_both_parts_and_every_link(smtp_server: FakeSmtpServer) -> None:
    message = incident_message(title="TypeError: <script>alert(1)</script>")

    result = channels.send(mail(), message, settings_for(smtp_server))

    assert (result.outcome, result.status_code, result.error) == ("sent", 250, None)
    [received] = smtp_server.messages
    assert received.mail_from == "bridge@example.com"
    assert received.rcpt_tos == TO
    email = received.message
    assert email["Subject"] == "[CRITICAL] checkout: TypeError: <script>alert(1)</script>"
    assert email["From"] == SENDER
    assert email["Auto-Submitted"] == "auto-generated"
    text = email.get_body(("plain",)).get_content()
    html = email.get_body(("html",)).get_content()
    for link in (
        "https://bridge.example.com/incidents/42",
        "https://acme.sentry.io/issues/1234567890/",
        message.ack_url,
    ):
        assert link in text and link in html
    assert "Events: 1287" in text and "Severity: Critical" in text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_title_with_line_breaks_makes_a_one_line_subject(smtp_server: FakeSmtpServer) -> None:
    message = incident_message(
        title="ValueError: bad input\r\nBcc: victim@example.com\n  at line 3"
    )

    result = channels.send(mail(), message, settings_for(smtp_server))

    assert result.outcome == "sent"
    email = smtp_server.messages[0].message
    # The email package folds this header right after "Subject:" (legal folding white
    # space), and its parser keeps the space the unfolding leaves; mail clients drop it.
    assert email["Subject"].strip() == (
        "[CRITICAL] checkout: ValueError: bad input Bcc: victim@example.com at line 3"
    )
    assert email["Bcc"] is None and smtp_server.messages[0].rcpt_tos == TO


def test_every_mail_about_one_incident_threads_under_one_stable_id(
    smtp_server: FakeSmtpServer,
) -> None:
    lifecycle = [
        "incident.triggered",
        "incident.acknowledged",
        "incident.resolved",
        "incident.reopened",
    ]
    for type_ in lifecycle:
        channels.send(mail(), incident_message(type_), settings_for(smtp_server))
    channels.send(mail(), incident_message(id=43), settings_for(smtp_server))

    emails = [received.message for received in smtp_server.messages]
    ids = [email["Message-ID"] for email in emails]
    assert len(set(ids)) == 5
    assert all(i.endswith("@bridge.example.com>") for i in ids)
    root = "<incident-42@bridge.example.com>"
    assert {(e["In-Reply-To"], e["References"]) for e in emails[:4]} == {(root, root)}
    assert emails[4]["References"] == "<incident-43@bridge.example.com>"
    assert root not in ids  # the thread root is virtual: no message claims it
    assert [e["Subject"].split("]")[0] for e in emails[:3]] == [
        "[CRITICAL",
        "[ACKNOWLEDGED",
        "[RESOLVED",
    ]


def test_the_message_id_is_the_notification_id_so_a_resend_is_recognisable(
    smtp_server: FakeSmtpServer,
) -> None:
    message = incident_message(notification_id="ntf_0123abcd")

    channels.send(mail(), message, settings_for(smtp_server, public_base_url=None))

    email = smtp_server.messages[0].message
    assert email["Message-ID"] == "<ntf_0123abcd@sentry-incident-bridge>"
    assert email["References"] == "<incident-42@sentry-incident-bridge>"


def test_digest_and_test_mails_have_sensible_subjects(smtp_server: FakeSmtpServer) -> None:
    channels.send(mail(), digest_message(12), settings_for(smtp_server))
    channels.send(mail(), channel_test_message(), settings_for(smtp_server))

    digest, test = (received.message for received in smtp_server.messages)
    assert digest["Subject"] == "[DIGEST] checkout: 12 new incidents"
    assert "… and 2 more" in digest.get_body(("plain",)).get_content()
    assert digest["References"] is None
    assert test["Subject"] == "[TEST] checkout: test notification from Sentry Incident Bridge"


def test_starttls_with_login_delivers(
    starttls_smtp_server: FakeSmtpServer, trusted_certificate: Certificate
) -> None:
    url = starttls_smtp_server.url("bridge", "p@ss w/rd:1")  # URL-encoded in the URL

    result = channels.send(mail(), incident_message(), settings_for(starttls_smtp_server, url))

    assert result.outcome == "sent"
    assert starttls_smtp_server.sink.logins == ["bridge"]
    assert len(starttls_smtp_server.messages) == 1


def test_smtps_with_login_delivers(
    smtps_server: FakeSmtpServer, trusted_certificate: Certificate
) -> None:
    url = smtps_server.url("bridge@example.com", "s3cr3t/+?#pw")

    result = channels.send(mail(), incident_message(), settings_for(smtps_server, url))

    assert result.outcome == "sent"
    assert smtps_server.sink.logins == ["bridge@example.com"]


def test_an_untrusted_certificate_fails_the_send(smtps_server: FakeSmtpServer) -> None:
    url = smtps_server.url("bridge@example.com", "s3cr3t/+?#pw")

    result = channels.send(mail(), incident_message(), settings_for(smtps_server, url))

    assert result.outcome == "failed"
    assert result.error == "the SMTP server's TLS certificate is not trusted"
    assert smtps_server.messages == []


def test_wrong_password_fails_permanently_without_repeating_it(
    smtps_server: FakeSmtpServer, trusted_certificate: Certificate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = smtps_server.url("bridge@example.com", "wrong-Pa55word")

    result = channels.send(mail(), incident_message(), settings_for(smtps_server, url))

    assert (result.outcome, result.status_code) == ("failed", 535)
    ours = [r.getMessage() for r in caplog.records if r.name != "mail.log"]  # not the fake's
    assert ours
    for text in [result.error or "", *ours]:
        assert "wrong-Pa55word" not in text and "wrong-Pa55word".replace("5", "%35") not in text


def test_one_refused_recipient_is_reported_and_the_others_get_it(
    smtp_server: FakeSmtpServer,
) -> None:
    smtp_server.sink.refuse("lead@example.com", "550 5.1.1 no such user")

    result = channels.send(mail(), incident_message(), settings_for(smtp_server))

    assert result.outcome == "sent"  # a retry would send it to oncall@ a second time
    assert result.error == "recipients refused: lead@example.com (550 5.1.1 no such user)"
    assert smtp_server.messages[0].rcpt_tos == ("oncall@example.com",)


def test_every_recipient_refused_permanently_fails(smtp_server: FakeSmtpServer) -> None:
    for address in TO:
        smtp_server.sink.refuse(address, "550 5.1.1 no such user")

    result = channels.send(mail(), incident_message(), settings_for(smtp_server))

    assert (result.outcome, result.status_code) == ("failed", 550)
    assert "lead@example.com" in (result.error or "") and "oncall@example.com" in (
        result.error or ""
    )


def test_recipients_refused_for_now_are_retried(smtp_server: FakeSmtpServer) -> None:
    smtp_server.sink.refuse("oncall@example.com", "450 4.2.1 mailbox busy")

    result = channels.send(
        mail("oncall@example.com"), incident_message(), settings_for(smtp_server)
    )

    assert (result.outcome, result.status_code) == ("retry", 450)


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [("451 4.3.0 try again later", "retry"), ("554 5.7.1 rejected as spam", "failed")],
)
def test_data_replies_are_classified_by_their_code(
    smtp_server: FakeSmtpServer, reply: str, outcome: str
) -> None:
    smtp_server.sink.answer_data(reply)

    result = channels.send(mail(), incident_message(), settings_for(smtp_server))

    assert (result.outcome, result.status_code) == (outcome, int(reply[:3]))
    assert reply[4:] in (result.error or "")


def test_no_smtp_server_listening_is_retried() -> None:
    settings = channel_settings(smtp_url=f"smtp://127.0.0.1:{free_port()}", smtp_from=SENDER)

    result = channels.send(mail(), incident_message(), settings)

    assert result.outcome == "retry"
    assert result.error == "connection to the SMTP server refused"


@pytest.mark.timing
def test_a_server_that_never_greets_is_a_timeout_to_retry() -> None:
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"smtp://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        result = channels.send(
            mail(),
            incident_message(),
            channel_settings(smtp_url=url, smtp_from=SENDER, timeout_seconds=0.5),
        )

    assert result.outcome == "retry" and "timed out" in (result.error or "")
    assert time.monotonic() - started < 2


def test_email_without_smtp_settings_fails_as_configuration() -> None:
    result = channels.send(mail(), incident_message(), channel_settings())

    assert result.outcome == "failed"
    assert "BRIDGE_SMTP_URL" in (result.error or "")
