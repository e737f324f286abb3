"""A stateful fake of PagerDuty's Events API v2 (`POST /v2/enqueue`) on loopback.

It enforces the documented rules of an alert event (developer.pagerduty.com, "Send an
Alert Event" and the Events v2 overview): `routing_key` of 32 characters, `event_action`
one of trigger/acknowledge/resolve, `dedup_key` at most 255 characters, and for a
trigger a `payload` with `summary` (at most 1024), `source` and `severity`
(critical/error/warning/info). Answers have PagerDuty's shapes: 202
`{"status":"success","message":"Event processed","dedup_key":...}` or 400
`{"status":"invalid event","message":"Event object is invalid","errors":[...]}` (the
error strings are paraphrased). It keeps the alert state per (routing key, dedup key)
like PagerDuty: a trigger opens an alert or adds to the open one, acknowledge and
resolve act on the open one and are dropped without one, and a trigger after a
resolve opens a new alert. Tests program faults (503, 429 with Retry-After) as with the
generic receiver.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Response

from tests.fakes.loopback import LoopbackServer, ReceivedRequest, RecordingApp, serve

SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")


@dataclass
class FakeAlert:
    """One PagerDuty alert (and so one incident): opened by a trigger, closed by a resolve."""

    number: int
    routing_key: str
    dedup_key: str
    status: str  # triggered | acknowledged | resolved
    summary: str
    severity: str
    events: list[str] = field(default_factory=list)  # the actions applied, in order
    payloads: list[dict[str, Any]] = field(default_factory=list)
    links: list[Any] = field(default_factory=list)


def validation_errors(event: Any) -> list[str]:
    if not isinstance(event, dict):
        return ["Event object is not a JSON object"]
    errors = []
    routing_key = event.get("routing_key")
    if not isinstance(routing_key, str) or len(routing_key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
        errors.append("'dedup_key' is too long (must be at most 255 characters)")
    if action in ("acknowledge", "resolve") and not dedup_key:
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "'payload' is missing or blank"]
        summary = payload.get("summary")
        if not isinstance(summary, str) or not summary:
            errors.append("'payload.summary' is missing or blank")
        elif len(summary) > 1024:
            errors.append("'payload.summary' is too long (must be at most 1024 characters)")
        if not isinstance(payload.get("source"), str) or not payload.get("source"):
            errors.append("'payload.source' is missing or blank")
        if payload.get("severity") not in SEVERITIES:
            errors.append(
                "'payload.severity' is invalid (must be one of: " + ", ".join(SEVERITIES) + ")"
            )
    return errors


class FakePagerDuty:
    def __init__(self) -> None:
        self.alerts: list[FakeAlert] = []  # every alert ever opened, oldest first
        self.dropped: list[dict[str, Any]] = []  # acknowledge/resolve with no open alert
        self._lock = threading.Lock()
        self.running: LoopbackServer = serve(RecordingApp(self._answer), "fake-pagerduty")

    # ------------------------------------------------------------ test controls

    @property
    def events_url(self) -> str:
        return self.running.base_url + "/v2/enqueue"

    @property
    def requests(self) -> list[ReceivedRequest]:
        return list(self.running.app.requests)

    def respond(
        self,
        status: int,
        body: str | bytes | dict[str, Any] = b"",
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        self.running.app.script.add(status, body, headers=headers, times=times, delay=delay)

    def alerts_for(self, dedup_key: str) -> list[FakeAlert]:
        with self._lock:
            return [alert for alert in self.alerts if alert.dedup_key == dedup_key]

    def open_alert(self, routing_key: str, dedup_key: str) -> FakeAlert | None:
        for alert in reversed(self.alerts):
            if alert.routing_key == routing_key and alert.dedup_key == dedup_key:
                return alert if alert.status != "resolved" else None
        return None

    def stop(self) -> None:
        self.running.stop()

    # ------------------------------------------------------------ the endpoint

    def _answer(self, request: ReceivedRequest) -> Response:
        if request.method != "POST" or request.path != "/v2/enqueue":
            return _json({"status": "not found"}, 404)
        try:
            event = json.loads(request.body)
        except ValueError:
            return _invalid(["Event object is not valid JSON"])
        errors = validation_errors(event)
        if errors:
            return _invalid(errors)
        with self._lock:
            dedup_key = event.get("dedup_key") or uuid.uuid4().hex
            self._apply(event, dedup_key)
        return _json(
            {"status": "success", "message": "Event processed", "dedup_key": dedup_key}, 202
        )

    def _apply(self, event: dict[str, Any], dedup_key: str) -> None:
        action = event["event_action"]
        alert = self.open_alert(event["routing_key"], dedup_key)
        if action == "trigger":
            payload = event["payload"]
            if alert is None:
                alert = FakeAlert(
                    number=len(self.alerts) + 1,
                    routing_key=event["routing_key"],
                    dedup_key=dedup_key,
                    status="triggered",
                    summary=payload["summary"],
                    severity=payload["severity"],
                )
                self.alerts.append(alert)
            alert.severity = payload["severity"]
            alert.summary = payload["summary"]
            alert.payloads.append(payload)
            alert.links = list(event.get("links") or [])
        elif alert is None:
            self.dropped.append(event)
            return
        elif action == "acknowledge":
            alert.status = "acknowledged"
        else:
            alert.status = "resolved"
        alert.events.append(action)


def _json(document: Any, status: int) -> Response:
    return Response(json.dumps(document), status=status, content_type="application/json")


def _invalid(errors: list[str]) -> Response:
    return _json(
        {"status": "invalid event", "message": "Event object is invalid", "errors": errors}, 400
    )
