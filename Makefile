# Everything a fresh machine needs is installed from here: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements/lock.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install postgres alertmanager services demo test unit lint typecheck bench lock clean

install: $(STAMP)

$(STAMP): requirements/lock.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

# The local PostgreSQL (installed and started where missing; skipped with IOC_DATABASE_URL).
postgres:
	deploy/local/postgres.sh

# Alertmanager, amtool and promtool (Debian's prometheus-alertmanager and prometheus; no system
# daemon is started): the demo, the tests and the bench each run their own Alertmanager on a
# free loopback port; the tests check the Prometheus rules and configs with promtool and amtool.
alertmanager:
	deploy/local/alertmanager.sh

# Database and the embedded broker (left running), for a hand-run worker or simulator.
services: install postgres
	$(BIN)/ioc services up

# The demo starts (and on Ctrl-C stops) its own broker, worker and simulator.
demo: install postgres alertmanager
	$(BIN)/ioc demo

lint: install
	$(BIN)/ruff check ioc pipelines tests bench
	$(BIN)/ruff format --check ioc pipelines tests bench

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q tests/unit

# Tests start their own brokers, databases and Alertmanagers; they need the PostgreSQL server
# and the Alertmanager binary.
test: install postgres alertmanager lint typecheck
	$(BIN)/pytest -q

bench: install postgres
	$(BIN)/python bench/ingest.py

# Re-pin the whole dependency tree with hashes after changing pyproject.toml; the image
# (deploy/Dockerfile) installs runtime.txt: the same pins without the dev tools.
lock: install
	$(BIN)/python -m pip install --quiet uv==0.13.9
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 -o requirements/lock.txt
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 -c requirements/lock.txt -o requirements/runtime.txt

clean:
	-$(BIN)/ioc services down
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
