"""The collaborators an app holds: settings, database, secret box, Sentry gateway.

Built once per process by create_app (and by the CLI and the jobs process), handed to the
edges, which pass them on to the services as arguments.
"""

from __future__ import annotations

from flask import Flask, current_app

from app.services.sentry_gateway import SentryGateway, make_client
from app.store.database import Database
from app.store.encryption import SecretBox, load_or_create_key_file
from app.store.spool_files import Spool
from app.store.time_scale import use_minute
from config.settings import Settings


class Bridge:
    """Everything create_app builds once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database = Database(
            settings.database_url,
            echo=settings.sql_echo,
            connect_timeout=settings.database_connect_timeout_seconds,
            statement_timeout_ms=settings.database_statement_timeout_ms,
        )
        use_minute(self.database.engine, settings.escalation_minute_seconds)
        self.spool = Spool(settings.spool_directory)
        keys = settings.encryption_keys or (load_or_create_key_file(settings.instance_path),)
        self.secrets = SecretBox(keys)
        self.session_secret = settings.session_secret or load_or_create_key_file(
            settings.instance_path, "session.key"
        )
        # One Sentry client (one requests.Session) per process, for the web and the jobs.
        self.sentry_gateway = SentryGateway(
            self.database, self.secrets, make_client(settings), settings
        )

    def init_app(self, app: Flask) -> None:
        app.extensions["bridge"] = self

    def base_url(self, request_root: str) -> str:
        return (self.settings.public_base_url or request_root).rstrip("/")


def bridge() -> Bridge:
    """The Bridge of the app handling the current request (edges only)."""
    found = current_app.extensions["bridge"]
    assert isinstance(found, Bridge)
    return found
