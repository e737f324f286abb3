"""What the tests against the fake Sentry share: the public app's slug, a person with a token."""

from __future__ import annotations

from dataclasses import dataclass

APP_SLUG = "sentry-incident-bridge-4f1a2b"


@dataclass(frozen=True)
class Person:
    id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}
