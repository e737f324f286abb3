"""Engine and transactions. The edge (a view, a job, a CLI command) owns one transaction."""

from __future__ import annotations

import sqlite3
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, configure_mappers, sessionmaker

from app.store.outage import OutageGate
from app.store.watchdog import DEADLINE_AT_OPTION, DEADLINE_OPTION, StatementWatchdog

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "bridge_read_only"
# Transactions that must not wait behind a queue of writers (the notification sender):
# on SQLite they ask for the write lock in a tight loop instead of SQLite's busy back-off.
EAGER_LOCK_OPTION = "bridge_eager_write_lock"
EAGER_LOCK_RETRY_SECONDS = 0.002
# A webhook's transaction on SQLite waits at most this long (seconds) for the write lock;
# then SQLITE_BUSY, and the delivery is spooled (is_busy) instead of answered after
# Sentry stopped waiting.
SQLITE_LOCK_WAIT_OPTION = "bridge_sqlite_lock_wait"
SQLITE_BUSY = 5
# PostgreSQL: the statements a transaction leaves to be sent with its COMMIT (a list made
# per transaction by Database.transaction; execute_at_commit).
AT_COMMIT_OPTION = "bridge_at_commit"
# Each PostgreSQL engine's statement watchdog (a pipelined COMMIT is armed by hand).
_WATCHDOGS: weakref.WeakKeyDictionary[Engine, StatementWatchdog] = weakref.WeakKeyDictionary()


def make_engine(
    url: str, echo: bool = False, connect_timeout: int = 3, statement_timeout_ms: int | None = None
) -> Engine:
    """An engine for SQLite (the embedded default) or PostgreSQL (production).

    Its errors, and so the logs, name the statement but never the values bound to it: they
    are integration ids (an unsigned integration's credential), bodies and tokens.
    `statement_timeout_ms` bounds every PostgreSQL statement, on the server and on the
    client (app/store/watchdog.py); None (migrations) leaves them unbounded.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            hide_parameters=True,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _serialise_sqlite_writers(engine)
        return engine
    # A short connect timeout: when PostgreSQL is unreachable the webhook spools the
    # delivery instead, and Sentry waits only about a second for the answer.
    # No pre-ping (a round trip per request): a connection that died with a database
    # restart fails its request, which the webhook then spools; the pool replaces it.
    engine = create_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_recycle=300,
        pool_size=5,
        max_overflow=5,
        # A thread waiting this long for a pooled connection is better off spooling.
        pool_timeout=5,
        connect_args=_postgresql_connect_args(parsed, connect_timeout, statement_timeout_ms),
    )
    if statement_timeout_ms is not None:
        # The client's deadline comes a little after the server's: a server that runs
        # says "statement timeout" itself and keeps the connection.
        watchdog = StatementWatchdog((statement_timeout_ms + 500) / 1000)
        watchdog.install(engine)
        _WATCHDOGS[engine] = watchdog

    @event.listens_for(engine, "before_cursor_execute")
    def _nothing_after_the_last(conn: Any, *_: Any) -> None:
        # A statement left for the COMMIT must be the transaction's last: one sent after
        # it would not see its writes (a lost update, not an error, if this let it pass).
        if conn.get_execution_options().get(AT_COMMIT_OPTION):
            raise RuntimeError("a statement was sent after one left for the COMMIT")

    return engine


def _postgresql_connect_args(
    parsed: Any, connect_timeout: int, statement_timeout_ms: int | None
) -> dict[str, Any]:
    """Timeouts for a database that stops answering, not only one that refuses.

    TCP keepalives find a dead peer on an idle connection, tcp_user_timeout one that stops
    acknowledging what was sent; statement_timeout bounds a statement the server runs (or
    waits on a lock for). The URL's own `options` (e.g. a search_path) are kept.
    """
    args: dict[str, Any] = {
        "connect_timeout": connect_timeout,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 3,
        "keepalives_count": 3,
    }
    if statement_timeout_ms is not None:
        given = parsed.query.get("options", "")
        options = " ".join(given) if isinstance(given, tuple) else given
        args["options"] = f"{options} -c statement_timeout={statement_timeout_ms}".strip()
        args["tcp_user_timeout"] = statement_timeout_ms
    return args


def _serialise_sqlite_writers(engine: Engine) -> None:
    """SQLite under several gunicorn workers: WAL, a busy timeout, and BEGIN IMMEDIATE.

    pysqlite's own deferred BEGIN lets two workers both read, then both try to write, and
    one fails with "database is locked" instead of waiting. Taking the write lock at BEGIN
    makes writers queue behind the busy timeout; WAL keeps readers off that queue.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Reads (Database.reading) take no write lock, so they never queue behind writers.
        options = connection.get_execution_options()
        if options.get(READ_ONLY_OPTION, False):
            connection.exec_driver_sql("BEGIN")
        elif options.get(SQLITE_LOCK_WAIT_OPTION) is not None:
            _begin_within(connection, float(options[SQLITE_LOCK_WAIT_OPTION]))
        elif options.get(EAGER_LOCK_OPTION, False):
            _begin_eagerly(connection.connection.dbapi_connection)
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _begin_within(connection: Any, seconds: float) -> None:
    """BEGIN IMMEDIATE for a webhook: asked every 2 ms (as `_begin_eagerly`: SQLite's
    own back-off sleeps up to 100 ms between tries, idling the lock under contention),
    for at most `seconds`, then SQLITE_BUSY. The first try goes through SQLAlchemy (so
    it is seen like any statement), the retries through the driver's cursor."""
    dbapi_connection = connection.connection.dbapi_connection
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=0")  # an in-process call, not a round trip
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except exc.OperationalError as error:
            if getattr(error.orig, "sqlite_errorcode", None) != SQLITE_BUSY:
                raise
        deadline = time.monotonic() + seconds
        while True:
            time.sleep(EAGER_LOCK_RETRY_SECONDS)
            try:
                cursor.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode != SQLITE_BUSY or time.monotonic() > deadline:
                    raise
    finally:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()


def _begin_eagerly(dbapi_connection: Any) -> None:
    """BEGIN IMMEDIATE, retried every 2 ms up to the busy timeout.

    SQLite's own busy handler sleeps longer the longer a connection has waited (1, 2, 5, ...
    up to 100 ms between tries), so under a storm of webhook writers a connection that
    waits keeps being overtaken by fresh ones; the notification sender, whose first
    attempt is due within a second, was seen waiting 2 s (docs/benchmarks.md). Asking
    often takes the lock in the first gap between two writers.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=0")
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                cursor.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
            time.sleep(EAGER_LOCK_RETRY_SECONDS)
    finally:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()


# SQLSTATEs of a server that answers but could not do the work in time: a statement
# cancelled (57014 query_canceled: the statement watchdog's cancel, statement_timeout), a
# lock not had (55P03 lock_not_available: lock_timeout, NOWAIT), a deadlock victim (40P01).
BUSY_SQLSTATES = frozenset({"57014", "55P03", "40P01"})


def is_busy(error: BaseException) -> bool:
    """Whether a database error means "the database answers, but this work waited too
    long" (a row lock held by another delivery, SQLite's write lock, slow work): worth
    spooling this delivery for, but no sign that the next one will fail too."""
    if isinstance(error, sqlite3.OperationalError):  # raised by our own BEGIN, unwrapped
        return getattr(error, "sqlite_errorcode", None) == SQLITE_BUSY
    if not isinstance(error, exc.DBAPIError) or error.connection_invalidated:
        return False
    if isinstance(error.orig, sqlite3.OperationalError):
        return getattr(error.orig, "sqlite_errorcode", None) == SQLITE_BUSY
    return getattr(error.orig, "sqlstate", None) in BUSY_SQLSTATES


def is_unavailable(error: BaseException) -> bool:
    """Whether a database error means "cannot reach the database" (worth spooling for, and
    worth sending the next deliveries to the spool at once). A busy database is not one."""
    if isinstance(error, exc.DisconnectionError | exc.TimeoutError):
        return True
    if isinstance(error, exc.DBAPIError):
        if is_busy(error):
            return False
        return bool(error.connection_invalidated) or isinstance(
            error, exc.OperationalError | exc.InterfaceError
        )
    return False


def execute_at_commit(connection: Any, statement: Any, params: dict[str, Any]) -> None:
    """Run `statement` as the transaction's last, sent together with its COMMIT.

    On PostgreSQL, in a Database.transaction, the statement waits and goes out in one
    pipeline with the COMMIT: one round trip for both (on two shared cores each round
    trip costs more than the statement; docs/benchmarks.md, issue 17). Elsewhere (SQLite,
    other transactions) it runs now. The caller must send nothing after it whose
    outcome depends on it, and may not read what it returns (nothing is returned).
    """
    waiting = connection.get_execution_options().get(AT_COMMIT_OPTION)
    if waiting is None:
        connection.execute(statement, params)
    else:
        waiting.append((statement, params))


def run_at_commit_now(connection: Any) -> None:
    """Send the statements left for the COMMIT now (e.g. at the end of a savepoint)."""
    waiting = connection.get_execution_options().get(AT_COMMIT_OPTION)
    if waiting:
        pending = list(waiting)
        waiting.clear()
        for statement, params in pending:
            connection.execute(statement, params)


def _commit_pipelined(session: Session, at_commit: list[tuple[Any, dict[str, Any]]]) -> None:
    """The statements left for the COMMIT and the COMMIT, in one psycopg pipeline.

    psycopg's commit() in pipeline mode syncs and reads every result before it returns,
    so an error of the statements or the COMMIT is raised here, before any answer. The
    driver's connection commits inside the pipeline and the session afterwards (nothing
    left to send): the session's commit hands the connection back to the pool, which
    must not get it still in pipeline mode. A connection whose pipelined commit failed is
    discarded: after a failed pipeline psycopg may report the transaction idle, and the
    pool's reset would not roll it back.
    """
    pending = list(at_commit)
    at_commit.clear()
    # Pending ORM writes came before the statements left for the COMMIT, and need their
    # results at once (generated ids): flushed first, outside the pipeline.
    session.flush()
    connection = session.connection()
    dbapi_connection: Any = connection.connection.dbapi_connection
    watchdog = _WATCHDOGS.get(connection.engine)
    try:
        with dbapi_connection.pipeline():
            for statement, params in pending:
                connection.execute(statement, params)
            # The wait for both results is here: under the watchdog like any COMMIT.
            if watchdog is not None:
                options = connection.get_execution_options()
                watchdog.arm(dbapi_connection, watchdog.seconds_for(options))
            try:
                dbapi_connection.commit()
            finally:
                if watchdog is not None:
                    watchdog.disarm(dbapi_connection)
    except BaseException as error:
        dialect = connection.dialect
        is_driver_error = isinstance(error, dialect.loaded_dbapi.Error)
        # Asked before the connection is discarded (a closed one is always "disconnected").
        is_disconnect = is_driver_error and dialect.is_disconnect(
            error,  # type: ignore[arg-type]  # a driver error, checked just above
            dbapi_connection,
            None,
        )
        connection.invalidate()
        if is_driver_error:
            # As SQLAlchemy would have raised it (is_busy / is_unavailable read these).
            raise exc.DBAPIError.instance(
                "COMMIT",
                None,
                error,
                dialect.loaded_dbapi.Error,
                dialect=dialect,
                connection_invalidated=is_disconnect,
            ) from error
        raise
    session.commit()


class Database:
    """One engine and its session factory, made by create_app and handed to the edges."""

    def __init__(
        self,
        url: str,
        echo: bool = False,
        connect_timeout: int = 3,
        statement_timeout_ms: int | None = None,
    ) -> None:
        self.url = url
        self.engine = make_engine(
            url,
            echo=echo,
            connect_timeout=connect_timeout,
            statement_timeout_ms=statement_timeout_ms,
        )
        # Tripped when a delivery found the database not answering (app/web/webhooks.py).
        self.outage = OutageGate(self.ping)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessions = sessionmaker(
            self.engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )
        self.eager_sessions = sessionmaker(
            self.engine.execution_options(**{EAGER_LOCK_OPTION: True}), expire_on_commit=False
        )
        # SQLAlchemy configures the mappers at the first ORM object a process makes; in a
        # fresh worker that was the first delivery's, ~0.1 s of CPU inside the sender's
        # second (and under the group's lock on SQLite). Done here, at start-up, instead.
        from app.store import models  # noqa: F401  # every mapped class is registered

        configure_mappers()

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A transaction that only reads (on SQLite it takes no write lock)."""
        with self.read_sessions() as session, session.begin():
            yield session

    @contextmanager
    def transaction(
        self,
        statement_deadline_seconds: float | None = None,
        deadline_at: float | None = None,
        pipelined_commit: bool = False,
    ) -> Iterator[Session]:
        """One unit of work: commit when the block ends, roll back if it raises.

        `statement_deadline_seconds` gives each PostgreSQL statement (and the COMMIT) of
        this transaction a tighter client-side deadline than the engine's; on SQLite it
        bounds the wait for the write lock (the only wait: WAL readers never block).
        `deadline_at` (time.monotonic()) is when the whole transaction must be over: no
        statement's deadline reaches past it. `pipelined_commit`: statements given to
        execute_at_commit go out with the COMMIT (PostgreSQL); without it they run at once.
        """
        with self.sessions() as session, session.begin():
            at_commit: list[tuple[Any, dict[str, Any]]] = []
            options: dict[str, Any] = {}
            if pipelined_commit and self.is_postgresql:
                options[AT_COMMIT_OPTION] = at_commit
            if statement_deadline_seconds is not None:
                if self.is_postgresql:
                    options[DEADLINE_OPTION] = statement_deadline_seconds
                    if deadline_at is not None:
                        options[DEADLINE_AT_OPTION] = deadline_at
                else:
                    left = (
                        statement_deadline_seconds
                        if deadline_at is None
                        else max(
                            0.0, min(statement_deadline_seconds, deadline_at - time.monotonic())
                        )
                    )
                    options[SQLITE_LOCK_WAIT_OPTION] = left
            if options:
                session.connection(execution_options=options)
            yield session
            if at_commit:
                _commit_pipelined(session, at_commit)

    @contextmanager
    def eager_transaction(self) -> Iterator[Session]:
        """A transaction that does not queue behind other writers' back-off for SQLite's
        write lock (the same as `transaction` on PostgreSQL, whose locks are per row)."""
        with self.eager_sessions() as session, session.begin():
            yield session

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
