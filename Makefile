# One command to serve (make run), one to test (make test). Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-unit test-integration test-e2e migrate lint typecheck format clean bench install

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(BIN)/bridge db upgrade

# gunicorn serves; the jobs process runs beside it and is stopped when gunicorn stops.
run: migrate
	@$(BIN)/bridge jobs run & jobs_pid=$$!; \
	trap 'kill $$jobs_pid 2>/dev/null; wait $$jobs_pid' EXIT; \
	$(BIN)/gunicorn -c config/gunicorn.conf.py wsgi:app

# The browser tests drive Debian's Chromium (never a downloaded browser build).
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "chromium is missing: 'sudo apt-get install chromium' (browser tests skip without it)"; \
	fi

# The linters, then every test not marked `timing` on both cores (pytest-xdist; each worker
# has its own schema, SQLite file, ports and Redis keys), then the timing tests alone, one at
# a time: beside another test they would time the machine. Both pytest runs always run;
# either failing fails make test.
test: $(STAMP) $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	status=0; \
	$(BIN)/pytest -n 2 --dist worksteal -m "not timing" || status=$$?; \
	$(BIN)/pytest -m timing || status=$$?; \
	exit $$status

# Parts of the suite on their own (`make test` runs them all, with the linters).
test-unit: $(STAMP)
	$(BIN)/pytest tests/unit

test-integration: $(STAMP)
	$(BIN)/pytest tests/integration

# The real server on loopback (and the browser): the slowest tests, marked e2e.
test-e2e: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest -m e2e tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

# Benchmarks on the real server (bench/, docs/benchmarks.md). Never part of `make test`.
# BENCH_QUICK=1 for a ~3-minute smoke run. Installs wrk (Debian) and py-spy if missing.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@command -v wrk >/dev/null || { \
		sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && $$sudo apt-get install -y -qq wrk; }
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
