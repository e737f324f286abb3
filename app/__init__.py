"""Application factory. Nothing happens at import time."""

from __future__ import annotations

from flask import Flask

from config.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app: database, secret box, blueprints and the error table."""
    from app.extensions import Bridge
    from app.web import (
        ack,
        api,
        errors,
        health,
        observability,
        security,
        sentry_oauth,
        sentry_ui,
        sessions,
        views,
        webhooks,
    )
    from app.web.observability import configure_logging

    settings = settings or load_settings()
    configure_logging(settings.log_level, as_json=settings.log_format == "json")
    app = Flask(__name__, instance_path=str(settings.instance_path))
    # The webhook reads its body itself, up to the configured limit (413 beyond it).
    app.config["MAX_CONTENT_LENGTH"] = None
    app.json.sort_keys = False  # type: ignore[attr-defined]  # DefaultJSONProvider has it
    app_bridge = Bridge(settings)
    app_bridge.init_app(app)
    security.init_app(app)
    sessions.init_app(app, app_bridge.session_secret, settings.secure_cookies)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(webhooks.blueprint)
    app.register_blueprint(api.load_routes())
    app.register_blueprint(sentry_oauth.blueprint)
    app.register_blueprint(sentry_ui.blueprint)
    app.register_blueprint(views.load_routes())
    app.register_blueprint(ack.blueprint)
    from app.web import calendars  # on-call feeds: the URL's token is the credential

    app.register_blueprint(calendars.blueprint)
    sessions.exempt_machine_blueprints(app)
    observability.init_app(app)
    errors.init_app(app)
    from app.web.spool_first import SpoolFirst  # overloaded deliveries, answered before Flask

    app.wsgi_app = SpoolFirst(app, app.wsgi_app)  # type: ignore[method-assign]
    return app
