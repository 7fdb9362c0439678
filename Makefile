# Two entry points for a fresh machine (see README.md):
#   make run   — set everything up in .venv and run the main job
#   make test  — set everything up in .venv and pass the test suite
# Nothing is installed outside .venv; versions are pinned by constraints.txt (also for the
# isolated build environment of the Cython extension, through PIP_CONSTRAINT).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

SOURCES_THAT_NEED_A_REBUILD := pyproject.toml setup.py constraints.txt \
	$(wildcard crypto_core/*.pyx crypto_core/*.c crypto_core/*.h)

.PHONY: setup run run-netsim test test-slow lint bench clean

$(STAMP): $(SOURCES_THAT_NEED_A_REBUILD)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The demo: a health network of 7 node processes on 127.0.0.1 (4 hospitals validating, a
# clinic and 2 patients observing), the diabetes-care story told one checked line per step,
# the dashboards' URLs; then the network stays up until Ctrl-C. Options: make run
# RUN_ARGS="--exit" (stop after the story; exit 0 when every step held), "--output DIR".
run: setup
	$(PY) -m node demo $(RUN_ARGS)

# A local network of 4 validator processes under a small key-value workload, one line per
# committed height, then a summary; exit 0 when every validator committed the same blocks.
# More options: make run-netsim RUN_ARGS="--nodes 8 --heights 100" (python -m netsim live -h).
run-netsim: setup
	$(PY) -m netsim live --validators 4 --heights 30 $(RUN_ARGS)

test: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

bench: setup
	$(PY) -m bench.merkle --json out/bench-merkle.json
	$(PY) -m bench.node --json out/bench-node.json
	$(PY) -m bench.core --json out/bench-core.json
	$(PY) -m bench.network --json out/bench-network.json
	$(PY) -m bench.consensus --json out/bench-consensus.json
	$(PY) -m bench.netsim --json out/bench-netsim.json
	$(PY) -m bench.http_api --json out/bench-http-api.json
	$(PY) -m bench.records --json out/bench-records.json

clean:
	rm -rf $(VENV) build *.egg-info crypto_core/_merkle_c.c crypto_core/*.so
