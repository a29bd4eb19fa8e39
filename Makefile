# Biddt: the two commands for a fresh machine are `make run` and `make test`.
# Both create .venv with the machine's Python 3.11+ and install the pinned requirements.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# Demo users log in with these fixed codes (no SMS is sent); `make run` only.
DEMO_PHONE_NUMBERS ?= +15555550100:123456,+15555550101:654321,+15555550102:111111,+15555550103:222222

.PHONY: run test chaos lint bench worker beat migrate chromium clean help

help:
	@echo "make run    - serve http://$(HOST):$(PORT) (REST and /ws/, one uvicorn) with embedded defaults and demo data"
	@echo "make test   - run the whole test suite"
	@echo "make lint   - ruff check and the import-linter layer contracts"
	@echo "make chaos  - fault injection on real processes (PostgreSQL + redis-server)"
	@echo "make chromium - install Debian's Chromium for the browser test (root; CI does)"
	@echo "make bench  - run the benchmarks in benchmarks/ (needs PostgreSQL; see README)"
	@echo "make worker / make beat - Celery worker / beat (needs REDIS_URL or CELERY_BROKER_URL)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

run: export BIDDT_TEST_PHONE_NUMBERS ?= $(DEMO_PHONE_NUMBERS)
run: $(VENV)/.runtime-installed
	$(BIN)/python -m biddt.locale_build
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py seed_demo
	$(BIN)/uvicorn --host $(HOST) --port $(PORT) --no-proxy-headers --lifespan off \
		--ws-max-size 1048576 biddt.asgi:application

test: $(VENV)/.dev-installed
	$(BIN)/python -m biddt.locale_build
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Fault injection (tests/chaos): Redis stopped, workers killed, PostgreSQL connections
# dropped, payment provider failing. Runs on PostgreSQL (DATABASE_URL, default below).
chaos: export BIDDT_CHAOS = 1
chaos: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/biddt_chaos
chaos: export REDIS_URL ?= redis://127.0.0.1:6379/13
chaos: $(VENV)/.dev-installed
	$(BIN)/python -m pytest tests/chaos -v $(PYTEST_ARGS)

# tests/admin/test_browser.py skips (with the reason) where Chromium is missing.
chromium:
	command -v chromium || (apt-get update -qq && apt-get install -y -qq chromium)

# ruff, then the import contracts of .importlinter (the layer order; no exceptions listed).
lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

bench: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

migrate: $(VENV)/.runtime-installed
	$(BIN)/python manage.py migrate --noinput

worker: $(VENV)/.runtime-installed
	$(BIN)/celery -A biddt worker --loglevel=INFO

beat: $(VENV)/.runtime-installed
	$(BIN)/celery -A biddt beat --loglevel=INFO

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache .hypothesis
