"""Several nodes on one database (issue 13): a node whose BRIDGE_ENCRYPTION_KEYS cannot
read the secrets already stored is not ready, and says which setting is wrong, instead
of taking traffic and answering 500 to every signed delivery."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import select

from app import create_app
from app.extensions import Bridge
from app.store.models import Delivery
from config.settings import Settings
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build


@pytest.fixture
def other_node(settings: Settings, bridge: Bridge) -> Iterator[Flask]:
    """A second node on the same database, started with an encryption key of its own."""
    node = create_app(replace(settings, encryption_keys=(Fernet.generate_key().decode(),)))
    yield node
    node.extensions["bridge"].database.dispose()


def test_a_node_with_other_encryption_keys_is_not_ready_and_names_the_setting(
    app: Flask, other_node: Flask, make_integration: Callable[..., MadeIntegration]
) -> None:
    make_integration(secret="s3cr3t")  # stored, encrypted with the first node's key

    good = app.test_client().get("/readyz")
    bad = other_node.test_client().get("/readyz")

    assert good.status_code == 200
    assert good.get_json()["checks"]["encryption_keys"] == "ok"
    assert bad.status_code == 503
    assert bad.get_json()["status"] == "not_ready"
    assert "BRIDGE_ENCRYPTION_KEYS" in bad.get_json()["checks"]["encryption_keys"]


def test_a_signed_delivery_reaching_such_a_node_is_kept_and_answered_503_not_500(
    other_node: Flask, bridge: Bridge, make_integration: Callable[..., MadeIntegration]
) -> None:
    integration = make_integration(secret="s3cr3t")
    delivery = build("integration_issue_created", secret="s3cr3t")

    answer = other_node.test_client().post(
        integration.url, data=delivery.body, headers=delivery.headers
    )

    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "encryption_keys_mismatch"
    assert "BRIDGE_ENCRYPTION_KEYS" in answer.get_json()["error"]["message"]
    assert "s3cr3t" not in answer.get_data(as_text=True)
    with bridge.database.transaction() as session:
        [kept] = session.scalars(select(Delivery)).all()
        assert kept.body == delivery.body and kept.decision == "failed"


def test_a_node_with_the_keys_in_another_order_is_ready(
    settings: Settings, make_integration: Callable[..., MadeIntegration]
) -> None:
    # Rotation: a new key put first, the old one kept; both read what is stored.
    make_integration(secret="s3cr3t")
    rotated = replace(
        settings, encryption_keys=(Fernet.generate_key().decode(), *settings.encryption_keys)
    )
    node = create_app(rotated)
    try:
        assert node.test_client().get("/readyz").status_code == 200
    finally:
        node.extensions["bridge"].database.dispose()
