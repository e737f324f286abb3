"""Production gunicorn configuration; `make run` and the benchmarks both use it."""

from config.settings import load_settings

_settings = load_settings()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = "sync"
# Sentry waits one second for an answer; a request that takes far longer is stuck.
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = "-"
# %(U)s is the path without the query string: the integrationId in the query is the
# credential of unsigned integrations and must not reach the logs.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms "%(a)s"'
errorlog = "-"
loglevel = _settings.log_level.lower()
# Workers import the app after forking so that no database connection crosses a fork.
preload_app = False
