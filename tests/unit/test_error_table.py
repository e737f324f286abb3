"""The one error table (app/web/errors.py): every error code maps to one HTTP status."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

import app
from app.domain import errors
from app.services.delivery_records import IngestOutcome, RecordedDelivery
from app.web.errors import STATUS_BY_CODE, answer_status, status_for


def _every_error_class() -> Iterator[type[errors.BridgeError]]:
    for module in pkgutil.walk_packages(app.__path__, "app."):
        importlib.import_module(module.name)
    pending = [errors.BridgeError]
    while pending:
        kind = pending.pop()
        yield kind
        pending.extend(kind.__subclasses__())


@pytest.mark.parametrize("kind", sorted(_every_error_class(), key=lambda k: k.code), ids=str)
def test_every_error_code_has_its_status_in_the_table(kind: type[errors.BridgeError]) -> None:
    assert kind.code in STATUS_BY_CODE


def test_statuses_follow_the_condition_not_the_class() -> None:
    assert status_for(errors.IllegalTransition("x")) == 409
    assert status_for(errors.RateLimited("slow down", retry_after=3)) == 429
    assert answer_status("signature_mismatch") == 401
    assert answer_status(None) == 202


def test_an_outcome_names_itself_for_the_metrics_by_its_code_or_its_action() -> None:
    delivery = RecordedDelivery(1, "abc", datetime(2026, 12, 1, tzinfo=UTC))
    refused = IngestOutcome(delivery, "refused", error=errors.SignatureMissing("no"))
    applied = IngestOutcome(delivery, "triggered")

    assert (refused.code, refused.label) == ("signature_missing", "signature_missing")
    assert (applied.code, applied.label) == (None, "triggered")
