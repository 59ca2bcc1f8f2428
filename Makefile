# One entry point for people and CI. Every target creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
# `make run HOST=0.0.0.0 PORT=9000`: each is passed to `hearth serve` only when given on make's
# command line, so that otherwise config.toml's `host`/`port` and HEARTH_HOST/HEARTH_PORT decide
# (default 127.0.0.1:8420). Variables of the same name in the environment (zsh's HOST, a
# platform's PORT) are ignored on purpose.
SERVE_FLAGS := $(if $(filter command line,$(origin HOST)),--host $(HOST)) \
	$(if $(filter command line,$(origin PORT)),--port $(PORT))
# The suite waits on real processes and clocks more than it computes, so it runs one worker
# more than these machines' two cores (2026-12-03: 714 s with two workers, 649 s with three).
TEST_WORKERS ?= 3

.PHONY: run test lint format bench soak clean venv web protocol-index

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[telegram]'
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,telegram]'
	touch $@ $(VENV)/.installed-run

venv: $(STAMP)

run: $(VENV)/.installed-run
	$(BIN)/hearth serve $(SERVE_FLAGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy --strict src/hearth

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

test: lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# Which family module holds each server message type (clients import only what they receive);
# tests/test_protocol_index.py fails when a message was added without running this.
protocol-index: $(STAMP)
	$(BIN)/python -m hearth.protocol.indexgen

# The dashboard: TypeScript types from the protocol's schema, then the bundle into
# src/hearth/web/static (both committed, so running Hearth needs no Node). Needs node and npm.
web: $(STAMP)
	$(BIN)/python -m hearth.web.typegen > web/src/protocol.ts
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent check && npm run --silent build

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,telegram,bench]'
	touch $@

# Every benchmark in bench/, each with its baseline in the same run and its ratio printed,
# at quick settings (a few minutes in all; see docs/benchmarks.md for the full runs). Machines
# are shared: each prints its load (uptime) first. A benchmark whose target is missed exits 1;
# the others still run, and the exit status of each is listed at the end.
bench: $(BENCH_STAMP)
	@statuses=""; for run in \
		"ws_roundtrip.py --seconds 3" \
		"workflow_steps.py --executions 200" \
		"scheduler.py --scenario hold --schedules 10000 --settle 2" \
		"scheduler.py --scenario fire --seconds 5" \
		"heartbeat_cost.py --items 1 3 5 10" \
		"chat_stream.py --runs 3" \
		"telegram_stream.py --runs 3" \
		"startup.py --runs 3" \
		"metrics_overhead.py" \
		"dashboard.py"; do \
		echo; echo "== bench/$$run  ($$(uptime))"; \
		$(BIN)/python bench/$$run; statuses="$$statuses\n  exit $$? bench/$$run"; \
	done; printf "\nbenchmarks:$$statuses\n"

# The reliability suite at full size (minutes): 100 000 fuzzed frames, then 100 SIGKILLs on
# SQLite and, when HEARTH_TEST_DATABASE_URL is set, 100 on two PostgreSQL gateways.
soak: $(STAMP)
	$(BIN)/python bench/fuzz.py
	$(BIN)/python bench/soak.py
	@if [ -n "$$HEARTH_TEST_DATABASE_URL" ]; then \
		$(BIN)/python bench/soak.py --backend postgres --nodes 2; \
	else echo "soak: PostgreSQL skipped (set HEARTH_TEST_DATABASE_URL)"; fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
