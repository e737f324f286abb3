"""Email over SMTP (stdlib smtplib/email): plain text plus escaped HTML, threaded.

BRIDGE_SMTP_URL is `smtp://host[:25]` (plain), `smtp+starttls://host[:587]` or
`smtps://host[:465]` (implicit TLS), each with optional URL-encoded `user:password@`.
TLS verifies the server against the system's CAs (SSL_CERT_FILE points at another
bundle, e.g. a private CA).

Threading: every message has its own Message-ID `<{notification_id}@{host}>` and refers,
with In-Reply-To and References, to one stable per-incident id
`<incident-{id}@{host}>` that no message uses as its own. A virtual thread root, because
the first message of an incident may never be sent (silenced, below the channel's
severity, a channel added later), and mail clients thread replies to a missing parent
just the same.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import unquote, urlsplit

from app.channels import rendering
from app.channels.base import ChannelSettings, ChannelTarget, Message, Outcome, SendResult
from app.channels.scrub import scrub, target_secrets

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
FALLBACK_HOST = "sentry-incident-bridge"


@dataclass(frozen=True)
class SmtpServer:
    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpServer:
    """ValueError (with a secret-free message) when the URL is not one of the three forms."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError("BRIDGE_SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
    if not parts.hostname:
        raise ValueError("BRIDGE_SMTP_URL names no host")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError("BRIDGE_SMTP_URL has an invalid port") from None
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return SmtpServer(scheme, parts.hostname, port, username, password)


def message_host(settings: ChannelSettings) -> str:
    host = urlsplit(settings.public_base_url or "").hostname
    return host or FALLBACK_HOST


def thread_id(incident_id: object, host: str) -> str:
    return f"<incident-{incident_id}@{host}>"


def _html_body(message: Message) -> str:
    lines = [f"<h2>{html.escape(rendering.headline(message))}</h2>"]
    if message.type == "incidents.digest":
        count = rendering.digest_count(message)
        lines.append(f"<p>{count} new incidents arrived in a short time.</p><ul>")
        for item in rendering.digest_incidents(message)[: rendering.DIGEST_TITLES]:
            title = html.escape(str(item.get("title") or "untitled incident"))
            lines.append(f"<li>[{rendering.severity_words(item)}] {title}</li>")
        lines.append("</ul>")
    elif message.type == "test":
        text = message.document.get("message") or f"A test from {rendering.PRODUCT}."
        lines.append(f"<p>{html.escape(str(text))}</p>")
    else:
        lines.append("<table>")
        for label, value in rendering.facts(message):
            lines.append(f"<tr><th align='left'>{label}</th><td>{html.escape(value)}</td></tr>")
        lines.append("</table>")
    anchors = [
        f'<a href="{html.escape(href, quote=True)}">{html.escape(text)}</a>'
        for text, href in rendering.links(message)
    ]
    if anchors:
        lines.append("<p>" + " · ".join(anchors) + "</p>")
    return "<!doctype html>\n<html><body>\n" + "\n".join(lines) + "\n</body></html>\n"


def build_email(
    message: Message, sender: str, recipients: tuple[str, ...], host: str
) -> EmailMessage:
    email = EmailMessage()
    email["Subject"] = rendering.headline(message)
    email["From"] = sender
    email["To"] = ", ".join(recipients)
    email["Date"] = format_datetime(message.occurred_at)
    email["Message-ID"] = f"<{message.notification_id}@{host}>"
    incident_id = rendering.incident_of(message).get("id")
    if incident_id is not None:
        root = thread_id(incident_id, host)
        email["In-Reply-To"] = root
        email["References"] = root
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    email.set_content(rendering.text_body(message))
    email.add_alternative(_html_body(message), subtype="html")
    return email


def _by_code(code: int, what: str) -> SendResult:
    # SMTP 4xx is "try again later", 5xx "this will never work" (RFC 5321 4.2.1).
    outcome: Outcome = "retry" if 400 <= code < 500 else "failed"
    return SendResult(outcome, status_code=code, error=what)


def _deliver(
    server: SmtpServer,
    timeout: float,
    email: EmailMessage,
    sender: str,
    recipients: tuple[str, ...],
) -> dict[str, tuple[int, bytes]]:
    context = ssl.create_default_context()
    connection: smtplib.SMTP
    if server.scheme == "smtps":
        connection = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
    else:
        connection = smtplib.SMTP(server.host, server.port, timeout=timeout)
    with connection:
        if server.scheme == "smtp+starttls":
            connection.starttls(context=context)
        if server.username:
            connection.login(server.username, server.password or "")
        return connection.send_message(email, from_addr=sender, to_addrs=list(recipients))


def send(target: ChannelTarget, message: Message, settings: ChannelSettings) -> SendResult:
    if not target.recipients:
        return SendResult("failed", error="the email channel has no recipients")
    if not settings.smtp_url or not settings.smtp_from:
        return SendResult(
            "failed", error="email is not configured (BRIDGE_SMTP_URL, BRIDGE_SMTP_FROM)"
        )
    try:
        server = parse_smtp_url(settings.smtp_url)
    except ValueError as error:
        return SendResult("failed", error=str(error))
    secrets = target_secrets(target, settings)
    timeout = settings.timeout_seconds
    email = build_email(message, settings.smtp_from, target.recipients, message_host(settings))
    sender = parseaddr(settings.smtp_from)[1] or settings.smtp_from  # the envelope's MAIL FROM
    try:
        refused = _deliver(server, timeout, email, sender, target.recipients)
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        every_transient = all(400 <= code < 500 for code in codes)
        result = _by_code(
            codes[0] if every_transient else max(codes), _refusal(error.recipients, secrets)
        )
        return result
    except smtplib.SMTPNotSupportedError:
        return SendResult("failed", error="the SMTP server does not offer STARTTLS or AUTH")
    except smtplib.SMTPResponseException as error:
        # Sender refused, authentication failed, DATA refused, 421 on connect, ...
        detail = scrub(_text(error.smtp_error), secrets, limit=120)
        return _by_code(error.smtp_code, f"SMTP server answered {error.smtp_code}: {detail}")
    except ssl.SSLCertVerificationError:
        return SendResult("failed", error="the SMTP server's TLS certificate is not trusted")
    except ssl.SSLError:
        return SendResult("retry", error="TLS handshake with the SMTP server failed")
    except TimeoutError:
        return SendResult("retry", error=f"no answer within {timeout:g} s (timed out)")
    except smtplib.SMTPServerDisconnected as error:
        # smtplib turns a read timeout into "Connection unexpectedly closed: timed out".
        if "timed out" in str(error):
            return SendResult("retry", error=f"no answer within {timeout:g} s (timed out)")
        return SendResult("retry", error="the SMTP server closed the connection")
    except ConnectionRefusedError:
        return SendResult("retry", error="connection to the SMTP server refused")
    except (smtplib.SMTPException, OSError) as error:
        return SendResult("retry", error=f"SMTP conversation failed ({type(error).__name__})")
    if refused:
        # Some recipients got it: retrying would send it to them twice. Report the rest.
        return SendResult("sent", status_code=250, error=_refusal(refused, secrets))
    return SendResult("sent", status_code=250)


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _refusal(refused: dict[str, tuple[int, bytes]], secrets: list[str]) -> str:
    parts = [
        f"{address} ({code} {scrub(_text(reply), secrets, limit=60)})"
        for address, (code, reply) in sorted(refused.items())
    ]
    return scrub("recipients refused: " + ", ".join(parts), secrets, limit=400)
