# Two commands on a bare machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8282
WORKERS ?= 1

.PHONY: run worker test lint superuser bench-detector bench-load mutation

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

run: $(VENV)/.runtime-installed
	PYTHON=$(BIN)/python PORT=$(PORT) WORKERS=$(WORKERS) ./entrypoint.sh

# Queue mode: a worker that runs the detections the server queues (TASKS_BACKEND=rq, REDIS_URL and
# DATABASE_URL the same as the server's). Start as many as there are cores, here or on other machines.
worker: $(VENV)/.runtime-installed
	PYTHON=$(BIN)/python ./entrypoint.sh worker

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(VENV)/.dev-installed lint
	$(BIN)/python -m pytest

superuser: $(VENV)/.runtime-installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py createsuperuser

# Accuracy (WIDER FACE AP) and single-thread speed of every detector profile.
# DATASET defaults to ../shared/faces/dev; the JSON report goes to bench-detector.json.
DATASET ?= ../shared/faces/dev
bench-detector: $(VENV)/.runtime-installed
	$(BIN)/python manage.py bench_detector --dataset $(DATASET) --output bench-detector.json

# Upload throughput against the same work without a server, websocket fan-out, memory: the real
# server (./entrypoint.sh) on this machine. PHOTOS defaults to ../shared/faces/dev/images;
# BENCH_LOAD_ARGS adds options, e.g. "--redis --workers 2". The JSON report goes to bench-load.json.
PHOTOS ?= ../shared/faces/dev/images
BENCH_LOAD_ARGS ?=
bench-load: $(VENV)/.dev-installed
	$(BIN)/python manage.py bench_load --photos $(PHOTOS) --output bench-load.json $(BENCH_LOAD_ARGS)

# Mutation testing, not part of `make test` (it takes a while): mutmut changes the modules that carry
# the README's promises one small change at a time (pyproject.toml's [tool.mutmut]) and runs the tests
# that reach each change; a change no test notices (survived) is a missing test or dead code.
# MUTANTS narrows the run, e.g. MUTANTS="detection.relay*"; the result per module is printed at the
# end, and `$(BIN)/mutmut show NAME` shows one mutant. Results are kept in mutants/ between runs.
MUTANTS ?=
mutation: $(VENV)/.dev-installed
	nice -n 15 $(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/mutmut results --all true | awk -F': ' '{ sub(/^ +/, "", $$1); split($$1, name, ".x"); count[name[1] " " $$2]++ } \
		END { for (key in count) print key ": " count[key] }' | sort
