# Everything a fresh machine needs: `make demo` and `make test` install what they use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
KAFKA  := $(PYTHON) tools/kafka/localkafka.py
PYTEST_ARGS ?=
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: install browser kafka-up kafka-down kafka-logs kafka-status lint format typecheck check test demo demo-dr bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $@

# Debian's Chromium, for the Web UI's browser tests (Playwright drives it; Playwright itself
# downloads nothing).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the Web UI browser tests"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

kafka-up:
	$(KAFKA) up

kafka-down:
	$(KAFKA) down

kafka-logs:
	$(KAFKA) logs

kafka-status:
	$(KAFKA) status

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The package and its tests, strictly (the tests' calls are checked against the package).
typecheck: install
	$(BIN)/mypy --strict aiostream_kafka tests

# The suite alone, against whatever clusters run (the fixtures start missing ones).
check: install browser
	$(BIN)/pytest $(PYTEST_ARGS)

# Lint, types and the whole suite on real brokers. `localkafka.py run` starts the clusters
# that are not running and stops them afterwards, even on failure, keeping the exit code
# (pytest's 5, "no tests ran", is a failure like any other non-zero code).
test: install browser lint typecheck
	$(KAFKA) run -- $(BIN)/pytest $(PYTEST_ARGS)

demo: install
	$(KAFKA) run -- $(BIN)/python -m examples.demo

# Disaster recovery (docs/disaster-recovery.md): MirrorMaker 2 up, the primary killed, failover, failback.
demo-dr: install
	$(KAFKA) run -- $(BIN)/python -m examples.disaster_recovery
	-$(KAFKA) mirror down

# The benchmarks compare against FastStream too: the bench extra installs it (and pydantic)
# into the same venv, since FastStream's kafka extra accepts our aiokafka (<0.15). The
# benchmarks are type-checked here, where their peers are installed.
bench: install
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/mypy --strict benchmarks
	$(KAFKA) run -- $(BIN)/python -m benchmarks

clean:
	-$(KAFKA) down
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
