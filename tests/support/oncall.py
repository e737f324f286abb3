"""Helpers for on-call tests: people, an incident, a recording `page` callable."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app.services import catalog
from app.services.accounts import Role, create_token, create_user
from app.services.escalation_targets import PageTarget
from app.store.models import ContactMethod, EscalationStep, Incident, Service
from tests.support.pages import PASSWORD


def make_people(session: Session, now: datetime, *emails: str, verified: bool = True) -> None:
    """Create responders whose account email is a verified contact method."""
    for email in emails:
        user = create_user(session, email, PASSWORD, Role.RESPONDER, now)
        session.add(
            ContactMethod(
                user_id=user.id,
                kind="email",
                verified=verified,
                verified_at=now if verified else None,
                created_at=now,
            )
        )
    session.flush()


def make_incident(
    session: Session, service: Service, now: datetime, severity: str = "error", key: str = "k1"
) -> Incident:
    incident = Incident.opened(
        service_id=service.id,
        dedup_key=key,
        title="Boom",
        source="sentry",
        severity=severity,
        at=now,
        created_at=now,
    )
    session.add(incident)
    session.flush()
    return incident


def make_service(session: Session, now: datetime, name: str = "Payments") -> Service:
    return catalog.create_service(session, name, now)


@dataclass
class RecordingPager:
    """A `page` callable that remembers who it was asked to notify."""

    calls: list[tuple[str, int, int]] = field(default_factory=list)

    def __call__(self, target: PageTarget, incident: Incident, step: EscalationStep) -> None:
        name = target.email or f"channel:{target.channel_name}"
        self.calls.append((name, incident.id, step.position))

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]


@dataclass(frozen=True)
class ApiCaller:
    """Calls the JSON API as one token's holder (None: anonymous)."""

    client: FlaskClient
    token: str | None

    def call(self, method: str, path: str, json: Any = None) -> TestResponse:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return self.client.open(path, method=method, json=json, headers=headers)


def api_token(session: Session, email: str, role: Role, now: datetime) -> str:
    create_user(session, email, PASSWORD, role, now)
    return create_token(session, email, "tests", now).token
