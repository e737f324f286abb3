"""Use cases. Each orchestrates domain + store + sentry; none commits."""
