"""An integration as the make_integration fixture (tests/conftest.py) made it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MadeIntegration:
    id: str
    service: str
    secret: str | None

    @property
    def url(self) -> str:
        return f"/api/integrations/sentry?integrationId={self.id}"
