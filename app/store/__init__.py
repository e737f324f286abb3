"""Persistence: SQLAlchemy models and intent-named queries."""
