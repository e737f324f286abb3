"""Sentry levels to incident severities (SPEC 4.2)."""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


_LEVELS = {
    "fatal": Severity.CRITICAL,
    "critical": Severity.CRITICAL,
    "error": Severity.ERROR,
    "warning": Severity.WARNING,
    "info": Severity.INFO,
    "debug": Severity.INFO,
}


def severity_from_level(level: object) -> Severity:
    """Map a Sentry level; a missing or unknown level is an error, never dropped."""
    if isinstance(level, str):
        return _LEVELS.get(level.strip().lower(), Severity.ERROR)
    return Severity.ERROR
