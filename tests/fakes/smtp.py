"""A real SMTP server on loopback (aiosmtpd), collecting every message it accepts.

Three flavours, as BRIDGE_SMTP_URL allows: plain, STARTTLS and implicit TLS (SMTPS),
the TLS ones with a certificate made for the test (tests/support/tls.py). Tests program
refusals: a recipient refused with a reply (`refuse`), or the next DATA answered with
a reply (`answer_data`, e.g. "451 4.3.0 try again later"). With `users`, AUTH PLAIN/LOGIN
is offered once the connection is encrypted (aiosmtpd's default), and checked.
"""

from __future__ import annotations

import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.ports import free_port


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes


@dataclass
class SmtpSink:
    """The handler: what was accepted, what to refuse, who may log in."""

    users: dict[str, str] = field(default_factory=dict)
    messages: list[ReceivedMail] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # address -> SMTP reply
    data_answers: deque[str] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Event = field(default_factory=threading.Event)

    def refuse(self, address: str, reply: str = "550 5.1.1 mailbox unavailable") -> None:
        self.refused[address] = reply

    def answer_data(self, reply: str, times: int = 1) -> None:
        self.data_answers.extend([reply] * times)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refused:
            return self.refused[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.data_answers:
                return self.data_answers.popleft()
            raw = bytes(envelope.original_content or envelope.content)
            parsed = message_from_bytes(raw, policy=policy.default)
            assert isinstance(parsed, EmailMessage)
            self.messages.append(
                ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), parsed, raw)
            )
        self.arrived.set()
        return "250 2.0.0 Message accepted for delivery"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode()
        if self.users.get(user) == auth_data.password.decode():
            self.logins.append(user)
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@dataclass
class FakeSmtpServer:
    controller: Controller
    sink: SmtpSink
    scheme: str  # smtp | smtp+starttls | smtps

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def messages(self) -> list[ReceivedMail]:
        return list(self.sink.messages)

    def url(self, user: str | None = None, password: str | None = None) -> str:
        from urllib.parse import quote

        auth = ""
        if user is not None:
            auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "") + "@"
        return f"{self.scheme}://{auth}127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.controller.stop()


def start_smtp_server(
    scheme: str = "smtp",
    tls: ssl.SSLContext | None = None,
    users: dict[str, str] | None = None,
) -> FakeSmtpServer:
    """Start an SMTP server on 127.0.0.1; `tls` (a server context) for the TLS schemes."""
    sink = SmtpSink(users=dict(users or {}))
    options: dict[str, Any] = {"hostname": "127.0.0.1", "port": free_port()}
    if users:
        options["authenticator"] = sink.authenticate
    if scheme == "smtp+starttls":
        assert tls is not None
        options["tls_context"] = tls
        options["require_starttls"] = True
    elif scheme == "smtps":
        assert tls is not None
        options["ssl_context"] = tls
        # aiosmtpd counts only STARTTLS as TLS when deciding to offer AUTH; on an
        # implicit-TLS socket every byte is encrypted already.
        options["auth_require_tls"] = False
    controller = Controller(sink, **options)
    controller.start()
    return FakeSmtpServer(controller, sink, scheme)
