"""A database that stops answering (not one that refuses): PostgreSQL behind a loopback
proxy that keeps every connection open but forwards nothing. Deliveries must go to the
spool and be answered within a second, not hang until the sender gives up."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import Bridge
from app.services import catalog
from app.services.spooled_deliveries import drain_spool
from app.store.models import Base, Incident
from tests.support.databases import make_settings
from tests.support.payloads import build
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
def proxied_app(
    postgres_url: str, tmp_path: Path, encryption_key: str
) -> Iterator[tuple[Flask, TcpProxy]]:
    """The app on PostgreSQL through the proxy, with the production timeouts."""
    direct = make_url(postgres_url)
    proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 5432)
    proxy.start()
    url = direct.set(port=proxy.port).render_as_string(hide_password=False)
    application = create_app(
        make_settings(url, tmp_path, encryption_key, database_connect_timeout_seconds=2)
    )
    try:
        yield application, proxy
    finally:
        proxy.thaw()
        application.extensions["bridge"].database.dispose()
        proxy.close()
        cleaner = create_engine(postgres_url)
        with cleaner.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())
        cleaner.dispose()


def _post_within(client: Any, url: str, seconds: float) -> tuple[float, Any]:
    """POST one delivery in a thread; (elapsed, response) or (inf, None) if it hangs."""
    delivery = build("integration_issue_created")
    answer: list[Any] = []
    started = time.monotonic()
    thread = threading.Thread(
        target=lambda: answer.append(
            client.post(url, data=delivery.body, headers=delivery.headers)
        ),
        daemon=True,
    )
    thread.start()
    thread.join(seconds)
    if not answer:
        return float("inf"), None
    return time.monotonic() - started, answer[0]


@pytest.mark.timing
def test_a_frozen_database_sends_deliveries_to_the_spool_within_a_second(
    proxied_app: tuple[Flask, TcpProxy],
) -> None:
    application, proxy = proxied_app
    bridge: Bridge = application.extensions["bridge"]
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        service = catalog.create_service(session, "Payments", now)
        integration_id = catalog.create_integration(
            session, bridge.secrets, service, now
        ).integration.id
    url = f"/api/integrations/sentry?integrationId={integration_id}"
    client = application.test_client()
    _elapsed, warm = _post_within(client, url, 10)
    assert warm is not None and warm.get_json()["action"] == "triggered"  # the pool holds it

    proxy.freeze()
    answers = [_post_within(client, url, 5) for _ in range(3)]
    proxy.thaw()

    for elapsed, response in answers:
        assert response is not None, "the delivery hung on the frozen database"
        assert elapsed < 1.0, [elapsed for elapsed, _ in answers]
        assert response.status_code == 202
        assert response.get_json()["action"] == "spooled"
    assert len(bridge.spool.pending()) == 3

    # Once it answers again, the probe lets deliveries through and the drain applies all.
    deadline = time.monotonic() + 10
    while bridge.database.outage.is_tripped:
        assert time.monotonic() < deadline, "the outage gate never reset"
        time.sleep(0.1)
    report = drain_spool(bridge.database, bridge.secrets, bridge.spool, 1024 * 1024)
    assert (report.applied, report.remaining) == (3, 0)
    with bridge.database.reading() as session:
        assert session.scalars(select(Incident.event_count)).one() == 4


def test_postgresql_connections_carry_a_statement_timeout_and_keep_the_urls_options(
    proxied_app: tuple[Flask, TcpProxy],
) -> None:
    application, _proxy = proxied_app
    bridge: Bridge = application.extensions["bridge"]
    with bridge.database.engine.connect() as connection:
        timeout = connection.execute(text("SHOW statement_timeout")).scalar()
        search_path = connection.execute(text("SHOW search_path")).scalar()

    assert timeout == "10s"
    assert str(search_path).startswith("bridge_test_")  # the URL's own options survive
