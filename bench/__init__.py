"""Benchmarks of the bridge on the real gunicorn server: `make bench` (see bench/run.py)."""
