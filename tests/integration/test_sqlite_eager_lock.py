"""The notification sender's eager write lock on SQLite (app/store/database.py): it waits
for a writer that holds the lock, takes it as soon as it is free, and leaves the
connection's busy timeout as it found it."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from app.store.database import SQLITE_BUSY_TIMEOUT_MS, Database
from app.store.migrate import upgrade

# The lock is taken within 50 ms of its release.
pytestmark = pytest.mark.timing


def test_an_eager_transaction_takes_the_lock_as_soon_as_another_writer_lets_go(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bridge.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    database = Database(url)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released_at: list[float] = []

    def release() -> None:
        time.sleep(0.3)
        released_at.append(time.monotonic())
        holder.execute("COMMIT")

    threading.Thread(target=release).start()
    started = time.monotonic()
    with database.eager_transaction() as session:
        session.execute(text("SELECT 1"))  # the connection, and so BEGIN, comes with it
        got_at = time.monotonic()
        timeout = session.execute(text("PRAGMA busy_timeout")).scalar_one()
    holder.close()
    database.dispose()

    assert got_at - started >= 0.29  # it waited for the holder
    assert got_at - released_at[0] < 0.05  # and took the lock at once when it was free
    assert timeout == SQLITE_BUSY_TIMEOUT_MS
