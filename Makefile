# The user-facing entry points. `make test` is what CI runs (.ci/run); `make demo` shows the system live.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CLICKCAST := $(BIN)/clickcast
SAMPLE ?= deploy/sample_data/foursquare_nyc_sample.csv.gz
QUICK_OUT ?= artifacts/quick
PYTEST_ARGS ?=
# Debian packages for the commands the stack runs: command:package.
APT_NEEDS := redis-server:redis-server java:default-jre-headless mvn:maven
# Debian packages with no command to look for, for Debian's own python3.11 (also installed by them when PYTHON is
# missing): venv support, and the shared libpython that Triton's python-backend stub loads (Debian's python3.11 is
# linked statically and brings neither). Another Python 3.11 (pyenv, uv) brings its own, or `stack prepare` says so.
APT_LIBS := python3.11-venv libpython3.11
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Exit status 0 when the model repository (settings.model_repository) holds a version of the served model.
HAS_MODEL := $(BIN)/python -c 'import sys; from deploy.stack.triton import model_versions; \
	from streams.settings import get_settings; s = get_settings(); \
	sys.exit(0 if model_versions(s.model_repository, s.triton.model_name) else 1)'

# The newest version's folder when its model.py is not the current serving code (printed empty otherwise).
STALE_MODEL := $(BIN)/python -c 'from deploy.stack.triton import stale_version; \
	from streams.settings import get_settings; s = get_settings(); \
	print(stale_version(s.model_repository, s.triton.model_name) or "")'

.PHONY: help setup system-packages model stack-up stack-down stack-status test demo bench lint clean

help:
	@echo "make setup       system packages (redis, JRE, Maven, python3.11 venv + libpython), .venv, Kafka jars, Triton stub env"
	@echo "make model       train a quick model and export it, unless a version exists already"
	@echo "make stack-up    start Kafka, Redis and Triton (clickcast stack up); stack-down / stack-status"
	@echo "make test        setup, model, stack up, pytest, stack down (even on failure)"
	@echo "make demo        setup, model, stack up, then clickcast demo"
	@echo "make bench       setup, quick model on the bench data, stack up + export, clickcast bench e2e"
	@echo "                 (artifacts/bench/); BENCH_DATA=F BENCH_COLUMNS=field=column,... for another check-in file"
	@echo "make lint        ruff check + ruff format --check"
	@echo "make clean       stop the stack, remove run dir and caches (keeps .venv and trained models)"

setup: system-packages $(VENV)/.installed
	$(CLICKCAST) stack prepare

system-packages:
	@missing=""; for need in $(APT_NEEDS); do \
		command -v "$${need%%:*}" >/dev/null || missing="$$missing $${need#*:}"; \
	done; \
	python=$$(command -v $(PYTHON)); \
	if command -v dpkg >/dev/null && { [ -z "$$python" ] || [ "$$(readlink -f "$$python")" = /usr/bin/python3.11 ]; }; then \
		for pkg in $(APT_LIBS); do dpkg -s "$$pkg" >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	fi; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
			echo "make: installing$$missing needs root or sudo; install them, then run make again" >&2; exit 1; \
		fi; \
		$(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# A venv that failed half-way (no ensurepip, say) must not pass for a finished one on the next run.
$(BIN)/python: | system-packages  # python3.11-venv first, also under make -j
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }

# Re-installed when pyproject.toml or this file (its pins) changes; pip finds the rest installed. nvidia-pytriton
# carries the Triton server binary; its Python API pins numpy<2, which we do not use, hence --no-deps.
$(VENV)/.installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps nvidia-pytriton==0.7.0
	touch $@

model: setup
	@if $(HAS_MODEL); then \
		stale=$$($(STALE_MODEL)); \
		if [ -n "$$stale" ]; then \
			echo "model: $$stale predates the current serving code (request contract); exporting it again"; \
			$(CLICKCAST) export --from "$$stale"; \
		else echo "model: a version is already in the model repository"; fi; \
	else \
		$(CLICKCAST) train --quick --data $(SAMPLE) --out $(QUICK_OUT) && $(CLICKCAST) export --from $(QUICK_OUT); \
	fi

stack-up: setup
	$(CLICKCAST) stack up

# Before `make setup` there is no stack to stop or show.
stack-down:
	@if [ -x $(CLICKCAST) ]; then $(CLICKCAST) stack down; else echo "no stack: $(CLICKCAST) is not installed yet"; fi

stack-status:
	@if [ -x $(CLICKCAST) ]; then $(CLICKCAST) stack status; else echo "no stack: $(CLICKCAST) is not installed yet"; fi

# pytest exits 5 when it collected nothing: that is a failure here, not a pass. The stack goes down however the
# recipe ends, also when it is killed (a cancelled CI job): its services run in sessions of their own.
test: setup model
	@trap '$(CLICKCAST) stack down' EXIT; trap 'exit 143' TERM INT; \
	status=0; \
	$(CLICKCAST) stack up || status=$$?; \
	if [ $$status -eq 0 ]; then CLICKCAST_REQUIRE_STACK=1 $(BIN)/pytest $(PYTEST_ARGS) || status=$$?; fi; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; status=1; fi; \
	exit $$status

demo: setup model
	$(CLICKCAST) stack up
	$(CLICKCAST) demo

# The end-to-end benchmark (minutes): clickcast's workers vs the naive loop vs Kafka pass-through. It serves a
# quick model trained on the benchmark's own data (the full public file where it sits beside the checkout), not
# the sample-trained one that `make model` leaves for tests and the demo: its vocabulary sets the model's cost.
# --prefill streams 30,000 unmeasured events first, so throughput and latency are measured on the histories a
# running system holds (on NYC: mean ~60 of the model's 100 events) rather than on the short ones a replay starts with.
# Another file: `make bench BENCH_DATA=F BENCH_COLUMNS=user_id=uid,item_id=venue,...` (`clickcast train`'s mapping).
# The bench model stays the served version and the stack stays up. The demo and tests expect the sample-trained model:
# `clickcast train --quick --data $(SAMPLE) --out $(QUICK_OUT) && clickcast export --from $(QUICK_OUT)` brings it back.
BENCH_DATA ?= $(shell $(BIN)/python -c 'from streams.commands import default_data; print(default_data())')
BENCH_COLUMNS ?=
BENCH_MAPPING = $(if $(strip $(BENCH_COLUMNS)),--columns '$(BENCH_COLUMNS)')
# Exit status 0 when Triton answers ready (settings' port).
TRITON_UP := $(BIN)/python -c 'import sys; from deploy.stack.triton import TritonService; \
	from streams.settings import get_settings; sys.exit(0 if TritonService(get_settings()).healthy() else 1)'
# A running Triton loads the new version from the repository, and the export waits for it. Otherwise the version goes
# into the repository first: `stack up` refuses to start Triton without one (a fresh clone), and Triton then starts
# on the newest version, whatever older ones the repository holds.
bench: setup
	$(CLICKCAST) train --quick --data "$(BENCH_DATA)" $(BENCH_MAPPING) --out artifacts/bench-model
	@if $(TRITON_UP); then \
		$(CLICKCAST) stack up && $(CLICKCAST) export --from artifacts/bench-model --wait 120; \
	else \
		echo "bench: Triton is not up: exporting the model, then starting the stack"; \
		$(CLICKCAST) export --from artifacts/bench-model && $(CLICKCAST) stack up; \
	fi
	$(CLICKCAST) bench e2e --workers 1,2 --prefill 30000 --file "$(BENCH_DATA)" $(BENCH_MAPPING)

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	@if [ -x $(CLICKCAST) ]; then $(CLICKCAST) stack down; fi
	rm -rf .run .cache .pytest_cache .ruff_cache
