"""Before Flask: answer the deliveries an overloaded worker keeps in the spool at once.

Under overload most deliveries are spooled without trying to apply them: they arrived
while more connections waited to be accepted than BRIDGE_ADMISSION_BACKLOG allows, or
are already older than the sender's deadline, or the database is known to be down
(app/web/admission.py, AdmissionControl.at_once; the outage breaker). The answer then
only has to keep the delivery durably and say so, and the more cheaply it does, the more
of a flood the server answers within Sentry's second: through Flask (its request
context, routing, hooks and a Response object) and with the alert read, that answer cost
several times what a bare Flask answer does (docs/benchmarks.md, "Issue 17, round 5").

So this WSGI middleware, in front of Flask, takes an ordinary delivery (a POST to the
webhook with a Content-Length within BRIDGE_MAX_BODY_BYTES and an integrationId) that
would be spooled at once, reads its body, spends its rate-limit budget after checking
its HMAC with the worker's copy of the integration, writes it to the spool and answers
the same 202 "spooled" document, with the same headers, as the route would. Anything
else, and the rare cases that need the route's error answers (past the rate limit, a
body that did not arrive whole, a spool write that failed), goes on to Flask, with the
decision and the spent budget handed over (webhooks.SpooledFirst) so that nothing is
decided or counted twice and the body the route reads is the one this read.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask

from app.domain.errors import DeliveryNotKept
from app.services.receiver_cache import Limited, spend_spool_budget
from app.services.spooled_deliveries import spool_delivery
from app.web import webhooks
from app.web.admission import arrived_at, listen_backlog
from app.web.observability import REQUEST_ID_HEADER, observe_delivery, request_id_of
from app.web.security import security_headers

log = logging.getLogger(__name__)
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_WEBHOOK_PATHS = frozenset({"/api/integrations/sentry", "/api/integrations/sentry/"})


class _Replay(io.RawIOBase):
    """The request body for the route, once this middleware has read it: the bytes it got,
    then what the server's stream did next (end of body, or the error it raised)."""

    def __init__(self, data: bytes, error: OSError | None) -> None:
        self._data = memoryview(data)
        self._error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._data:
            if self._error is not None:
                raise self._error
            return 0
        count = min(len(buffer), len(self._data))
        buffer[:count] = self._data[:count]
        self._data = self._data[count:]
        return count


class SpoolFirst:
    """app.wsgi_app = SpoolFirst(app, app.wsgi_app): see the module's docstring."""

    def __init__(self, app: Flask, inner: WSGIApp) -> None:
        self.app = app
        self.inner = inner
        bridge = app.extensions["bridge"]
        self._bridge = bridge
        self._max_bytes = bridge.settings.max_body_bytes
        self._headers = [
            ("Content-Type", "application/json"),
            *security_headers(is_page=False, is_https_only=bridge.settings.secure_cookies),
        ]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") not in (
            _WEBHOOK_PATHS
        ):
            return self.inner(environ, start_response)
        started = time.perf_counter()
        length = _declared_length(environ)
        integration_id = _integration_id(environ)
        if length is None or not 0 < length <= self._max_bytes or not integration_id:
            return self.inner(environ, start_response)  # the route's refusals, as ever
        reason = self._reason_to_spool(environ)
        if reason is None:
            return self.inner(environ, start_response)  # applied now, or it waits for a slot
        stream = environ["wsgi.input"]
        try:
            body = stream.read(length)
        except OSError as error:
            return self._to_route(environ, start_response, reason, b"", error, spent=False)
        if len(body) != length:
            return self._to_route(environ, start_response, reason, body, None, spent=False)
        inbound = webhooks.inbound_from(environ, integration_id, body, length)
        try:
            limited = spend_spool_budget(
                inbound,
                webhooks.receivers_for(self.app),
                self._bridge.secrets,
                self._max_bytes,
                self.app.extensions["rate_limits"].deliveries,
            )
        except Exception:
            # Nothing here may cost a delivery its answer: the route does it all again,
            # with its own error handling.
            log.exception("spooling before Flask failed; the route takes the delivery")
            return self._to_route(environ, start_response, reason, body, None, spent=False)
        if limited is not None:
            return self._to_route(environ, start_response, reason, body, None, True, limited)
        try:
            spool_id = spool_delivery(self._bridge.spool, inbound)
        except Exception as error:
            # The route tries once more and answers 503 if the disk still says no (and 500
            # with its record of the failure for anything else).
            if not isinstance(error, DeliveryNotKept):
                log.exception("spooling before Flask failed; the route takes the delivery")
            return self._to_route(environ, start_response, reason, body, None, spent=True)
        webhooks.spool_notes.note(spool_id)
        # As Flask's JSON provider writes it (compact, keys in order, a final newline).
        document = webhooks.spooled_document(spool_id, reason)
        answer = (json.dumps(document, separators=(",", ":")) + "\n").encode("ascii")
        start_response(
            "202 ACCEPTED",
            [
                *self._headers,
                ("Content-Length", str(len(answer))),
                (REQUEST_ID_HEADER, request_id_of(environ)),
            ],
        )
        observe_delivery("spooled", started)
        return [answer]

    def _reason_to_spool(self, environ: dict[str, Any]) -> str | None:
        if self._bridge.database.outage.is_tripped:
            return webhooks.OUTAGE_REASON
        admission = webhooks.admission_for(self.app)
        decided = admission.at_once(arrived_at(environ), time.time(), listen_backlog(environ))
        return None if decided is None else webhooks.BUSY_REASON

    def _to_route(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        reason: str,
        body: bytes,
        error: OSError | None,
        spent: bool,
        limited: Limited | None = None,
    ) -> Iterable[bytes]:
        """On to the route with the body read so far and the decision made here."""
        environ["wsgi.input"] = io.BufferedReader(_Replay(body, error))
        environ[webhooks.SPOOLED_FIRST_KEY] = webhooks.SpooledFirst(reason, spent, limited)
        return self.inner(environ, start_response)


def _declared_length(environ: dict[str, Any]) -> int | None:
    raw = environ.get("CONTENT_LENGTH") or ""
    return int(raw) if raw.isascii() and raw.isdigit() else None  # not "²": ValueError


def _integration_id(environ: dict[str, Any]) -> str | None:
    """The first integrationId of the query, as Flask's request.args.get reads it."""
    for name, value in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
        if name == "integrationId":
            return value or None
    return None
