"""Every setting the bridge reads, and the one function that reads them from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE_PATH = PROJECT_ROOT / "instance"


@dataclass(frozen=True)
class Settings:
    """Configuration of one bridge process; see config/example.env for each variable."""

    database_url: str
    instance_path: Path = DEFAULT_INSTANCE_PATH
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 4
    # Threads per gunicorn worker: a slow client holds one thread, never a whole worker.
    web_threads: int = 32
    # A client that sends nothing for this long mid-request is answered 408 and dropped.
    client_idle_timeout_seconds: int = 10
    public_base_url: str | None = None
    max_body_bytes: int = 1024 * 1024
    secret_grace_seconds: int = 24 * 3600
    delivery_retention_days: int = 30
    prune_interval_minutes: int = 60
    encryption_keys: tuple[str, ...] = field(default_factory=tuple)
    log_level: str = "INFO"
    log_format: str = "json"  # json lines with a request id, or "text" for a terminal
    sql_echo: bool = False
    # Web sessions: signing key (default: a key file in the instance folder) and whether
    # cookies are Secure-only (default: when BRIDGE_PUBLIC_URL is https).
    session_secret: str | None = None
    secure_cookies: bool = False
    # Deliveries that arrive while the database is unreachable wait here (default:
    # instance/spool) and are applied in order by the jobs process every few seconds.
    spool_path: Path | None = None
    spool_drain_seconds: int = 1
    database_connect_timeout_seconds: int = 3
    # PostgreSQL statement timeout (server and client side), and the tighter client-side
    # deadline of each statement of a webhook delivery: past it the delivery is spooled.
    database_statement_timeout_ms: int = 10_000
    database_delivery_timeout_ms: int = 500
    # Admission control (app/web/admission.py): deliveries one worker applies against the
    # database at once (None: derived from the database, see Settings.apply_slots), and
    # how long after its arrival a delivery may wait for a slot before it is spooled.
    apply_concurrency: int | None = None
    admission_wait_ms: int = 200
    # ...and past how many connections waiting in the kernel's accept queue (the server
    # not keeping up) a delivery is spooled without trying to apply it.
    admission_backlog: int = 64
    # How long the sender waits for an answer: Sentry gives up after one second and never
    # retries an internal integration. A delivery that cannot be applied and answered in
    # it is spooled instead (a self-hosted sender with a longer timeout may raise it).
    sender_deadline_ms: int = 1000
    # Sentry OAuth module (SPEC 6). Client id/secret are those of the public integration.
    sentry_base_url: str = "https://sentry.io"
    sentry_client_id: str | None = None
    sentry_client_secret: str | None = None
    sentry_app_slug: str | None = None
    sentry_app_uuid: str | None = None
    sentry_timeout_seconds: int = 10
    sentry_max_retries: int = 3
    sentry_max_wait_seconds: int = 30
    sentry_job_poll_seconds: int = 5
    sentry_job_max_attempts: int = 8
    sentry_token_refresh_interval_minutes: int = 5
    sentry_token_refresh_margin_minutes: int = 15
    sentry_oauth_state_ttl_seconds: int = 600
    # Rate limits shared by the workers of one host (a SQLite file in the instance
    # folder). Sentry does not retry internal integrations: a refused delivery is
    # recorded but its alert is not applied, so the delivery limit is generous.
    rate_limit_per_minute: int = 6000
    # Refused deliveries (bad signature, disabled...) per integration, and deliveries for
    # unknown integration ids per client address: buckets of their own, never the above.
    refused_rate_limit_per_minute: int = 600
    unknown_rate_limit_per_minute: int = 60
    login_max_failures: int = 5
    login_failure_window_seconds: int = 900
    # With a redis:// URL the limits above are shared by every node (docs/deploy.md),
    # under keys starting with the prefix; unreachable Redis admits (fails open).
    rate_limit_url: str | None = field(default=None, repr=False)
    rate_limit_prefix: str = "bridge"
    # When set, GET /metrics needs `Authorization: Bearer <this>` (it names integrations'
    # traffic and the bridge's internals; default: open, keep it off the public network).
    metrics_token: str | None = field(default=None, repr=False)
    # Under gunicorn (config/gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR) a scrape sums
    # the counters every worker wrote to that folder; else it reads this process's own.
    metrics_multiprocess: bool = False
    # Notifications (SPEC 7): the sender thread of the jobs process, and what the channel
    # adapters need. Transient failures are retried for the retry window, then fail.
    notify_poll_ms: int = 200
    notify_lease_seconds: int = 60
    notify_retry_window_seconds: int = 3600
    ack_link_ttl_hours: int = 24
    channel_timeout_seconds: int = 10
    smtp_url: str | None = None
    smtp_from: str | None = None
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    # Paging (docs/on-call.md): how often the jobs process looks for due escalation steps
    # and acknowledgement timeouts; and how long an escalation "minute" lasts (60 s; tests
    # shorten it so that a step's delay can be waited for).
    escalation_poll_ms: int = 1000
    escalation_minute_seconds: int = 60
    # How long a "minute" of the periodic jobs' intervals lasts (prune, token refresh:
    # run once per interval cluster-wide, app/jobs/leases.py); tests shorten it.
    job_minute_seconds: int = 60

    @property
    def apply_slots(self) -> int:
        """BRIDGE_APPLY_CONCURRENCY, else: PostgreSQL, the pool's steady size (5), so that
        no admitted delivery waits for a connection; SQLite, 8 (one writer at a time, but
        the deliveries of a worker that wait for the lock together share one transaction,
        app/store/group_commit.py: the more wait, the more one lock turn applies)."""
        if self.apply_concurrency is not None:
            return self.apply_concurrency
        return 5 if self.database_url.startswith("postgresql") else 8

    @property
    def spool_directory(self) -> Path:
        return self.spool_path or self.instance_path / "spool"


class SettingsError(ValueError):
    """A variable in the environment has a value the bridge cannot use."""


def _int(environ: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _flag(raw: str | None, default: bool) -> bool:
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


REDIS_SCHEMES = ("redis://", "rediss://", "redis+unix://")


def _redis_url(environ: Mapping[str, str], name: str) -> str | None:
    raw = (environ.get(name) or "").strip()
    if not raw:
        return None
    if not raw.startswith(REDIS_SCHEMES):
        raise SettingsError(f"{name} must be a redis://, rediss:// or redis+unix:// URL")
    return raw


def default_sqlite_url(instance_path: Path) -> str:
    return f"sqlite:///{instance_path / 'bridge.db'}"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from the environment (or the mapping given, for tests)."""
    env = os.environ if environ is None else environ
    instance_path = Path(env.get("BRIDGE_INSTANCE_PATH") or DEFAULT_INSTANCE_PATH)
    keys = tuple(k.strip() for k in env.get("BRIDGE_ENCRYPTION_KEYS", "").split(",") if k.strip())
    return Settings(
        database_url=env.get("DATABASE_URL") or default_sqlite_url(instance_path),
        instance_path=instance_path,
        host=env.get("HOST") or "127.0.0.1",
        port=_int(env, "PORT", 8000, minimum=1),
        workers=_int(env, "WEB_CONCURRENCY", 4, minimum=1),
        web_threads=_int(env, "WEB_THREADS", 32, minimum=1),
        client_idle_timeout_seconds=_int(env, "BRIDGE_CLIENT_IDLE_TIMEOUT_SECONDS", 10, 1),
        public_base_url=(env.get("BRIDGE_PUBLIC_URL") or None),
        max_body_bytes=_int(env, "BRIDGE_MAX_BODY_BYTES", 1024 * 1024, minimum=1024),
        secret_grace_seconds=_int(env, "BRIDGE_SECRET_GRACE_SECONDS", 24 * 3600),
        delivery_retention_days=_int(env, "BRIDGE_DELIVERY_RETENTION_DAYS", 30, minimum=1),
        prune_interval_minutes=_int(env, "BRIDGE_PRUNE_INTERVAL_MINUTES", 60, minimum=1),
        encryption_keys=keys,
        log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
        log_format="text" if (env.get("LOG_FORMAT") or "").lower() == "text" else "json",
        sql_echo=env.get("BRIDGE_SQL_ECHO", "") in {"1", "true", "yes"},
        session_secret=env.get("BRIDGE_SECRET_KEY") or None,
        spool_path=Path(env["BRIDGE_SPOOL_PATH"]) if env.get("BRIDGE_SPOOL_PATH") else None,
        spool_drain_seconds=_int(env, "BRIDGE_SPOOL_DRAIN_SECONDS", 1, minimum=1),
        database_connect_timeout_seconds=_int(env, "BRIDGE_DB_CONNECT_TIMEOUT_SECONDS", 3, 1),
        database_statement_timeout_ms=_int(env, "BRIDGE_DB_STATEMENT_TIMEOUT_MS", 10_000, 100),
        database_delivery_timeout_ms=_int(env, "BRIDGE_DB_DELIVERY_TIMEOUT_MS", 500, 50),
        apply_concurrency=_int(env, "BRIDGE_APPLY_CONCURRENCY", 0, minimum=0) or None,
        admission_wait_ms=_int(env, "BRIDGE_ADMISSION_WAIT_MS", 200, minimum=1),
        admission_backlog=_int(env, "BRIDGE_ADMISSION_BACKLOG", 64, minimum=0),
        sender_deadline_ms=_int(env, "BRIDGE_SENDER_DEADLINE_MS", 1000, minimum=300),
        secure_cookies=_flag(
            env.get("BRIDGE_SECURE_COOKIES"),
            default=(env.get("BRIDGE_PUBLIC_URL") or "").startswith("https://"),
        ),
        sentry_base_url=(env.get("SENTRY_BASE_URL") or "https://sentry.io").rstrip("/"),
        sentry_client_id=env.get("SENTRY_CLIENT_ID") or None,
        sentry_client_secret=env.get("SENTRY_CLIENT_SECRET") or None,
        sentry_app_slug=env.get("SENTRY_APP_SLUG") or None,
        sentry_app_uuid=env.get("SENTRY_APP_UUID") or None,
        sentry_timeout_seconds=_int(env, "SENTRY_TIMEOUT_SECONDS", 10, minimum=1),
        sentry_max_retries=_int(env, "SENTRY_MAX_RETRIES", 3),
        sentry_max_wait_seconds=_int(env, "SENTRY_MAX_WAIT_SECONDS", 30),
        sentry_job_poll_seconds=_int(env, "SENTRY_JOB_POLL_SECONDS", 5, minimum=1),
        sentry_job_max_attempts=_int(env, "SENTRY_JOB_MAX_ATTEMPTS", 8, minimum=1),
        sentry_token_refresh_interval_minutes=_int(
            env, "SENTRY_TOKEN_REFRESH_INTERVAL_MINUTES", 5, minimum=1
        ),
        sentry_token_refresh_margin_minutes=_int(
            env, "SENTRY_TOKEN_REFRESH_MARGIN_MINUTES", 15, minimum=1
        ),
        sentry_oauth_state_ttl_seconds=_int(env, "SENTRY_OAUTH_STATE_TTL_SECONDS", 600, minimum=60),
        rate_limit_per_minute=_int(env, "BRIDGE_RATE_LIMIT_PER_MINUTE", 6000),
        refused_rate_limit_per_minute=_int(env, "BRIDGE_REFUSED_RATE_LIMIT_PER_MINUTE", 600),
        unknown_rate_limit_per_minute=_int(env, "BRIDGE_UNKNOWN_RATE_LIMIT_PER_MINUTE", 60),
        login_max_failures=_int(env, "BRIDGE_LOGIN_MAX_FAILURES", 5),
        login_failure_window_seconds=_int(
            env, "BRIDGE_LOGIN_FAILURE_WINDOW_SECONDS", 900, minimum=1
        ),
        rate_limit_url=_redis_url(env, "BRIDGE_RATE_LIMIT_URL"),
        rate_limit_prefix=(env.get("BRIDGE_RATE_LIMIT_PREFIX") or "bridge").strip(),
        metrics_token=(env.get("BRIDGE_METRICS_TOKEN") or "").strip() or None,
        metrics_multiprocess=bool(env.get("PROMETHEUS_MULTIPROC_DIR")),
        notify_poll_ms=_int(env, "BRIDGE_NOTIFY_POLL_MS", 200, minimum=10),
        notify_lease_seconds=_int(env, "BRIDGE_NOTIFY_LEASE_SECONDS", 60, minimum=5),
        notify_retry_window_seconds=_int(env, "BRIDGE_NOTIFY_RETRY_WINDOW_SECONDS", 3600),
        ack_link_ttl_hours=_int(env, "BRIDGE_ACK_LINK_TTL_HOURS", 24, minimum=1),
        channel_timeout_seconds=_int(env, "BRIDGE_CHANNEL_TIMEOUT_SECONDS", 10, minimum=1),
        smtp_url=env.get("BRIDGE_SMTP_URL") or None,
        smtp_from=env.get("BRIDGE_SMTP_FROM") or None,
        pagerduty_events_url=env.get("BRIDGE_PAGERDUTY_EVENTS_URL")
        or "https://events.pagerduty.com/v2/enqueue",
        escalation_poll_ms=_int(env, "BRIDGE_ESCALATION_POLL_MS", 1000, minimum=100),
        escalation_minute_seconds=_int(env, "BRIDGE_ESCALATION_MINUTE_SECONDS", 60, minimum=1),
        job_minute_seconds=_int(env, "BRIDGE_JOB_MINUTE_SECONDS", 60, minimum=1),
    )
