# `make demo` and `make test` set everything up themselves on a machine with Python 3.11 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: install demo sample test test-fast benchmarks clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,postgis]"
	touch $(STAMP)

install: $(STAMP)

# The sample city is built once (about 20 s) into ~/.cache/jngis, then reused.
sample: $(STAMP)
	$(BIN)/jngis sample

# The map server on http://127.0.0.1:8000 with the sample city (Ctrl-C stops it).
demo: sample
	$(BIN)/jngis serve --host 127.0.0.1 --port 8000

test: sample
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --doctest-modules jngis tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -x -m "not slow" tests

benchmarks: sample
	$(BIN)/python -m pip install --quiet -e ".[dev,postgis,bench]"
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
