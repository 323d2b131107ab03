# `make demo` and `make test` set everything up themselves on a machine with Python 3.11 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: install demo sample lint test test-fast benchmarks reliability clean

$(STAMP): setup.cfg setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,postgis]"
	touch $(STAMP)

install: $(STAMP)

# The sample city is built once (about 90 s: the city, then its store with a year of order history) into ~/.cache/jngis, then reused.
sample: $(STAMP)
	$(BIN)/jngis sample

# The map server on http://127.0.0.1:8000 with the sample city (Ctrl-C stops it).
demo: sample
	$(BIN)/jngis serve --host 127.0.0.1 --port 8000

# ruff (rules and per-file exceptions in pyproject.toml) on everything, mypy on the modules listed there.
lint: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy

# loadgroup keeps the tests of one xdist_group (the wheel test's build and install) on one worker.
test: lint sample
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup --doctest-modules jngis tests $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -x -m "not slow" tests

benchmarks: sample
	$(BIN)/python -m pip install --quiet -e ".[dev,postgis,bench]"
	for script in benchmarks/*.py; do \
	    case $$script in benchmarks/load.py) continue;; esac; \
	    $(BIN)/python $$script || exit 1; done

# Longer reliability runs: more fuzz examples, several kill/restart cycles, the 100,000-request load test.
reliability: sample
	JNGIS_FUZZ_EXAMPLES=300 JNGIS_CRASH_ROUNDS=5 $(BIN)/python -m pytest -q tests/test_fuzz_library.py \
	    tests/server/test_fuzz_api.py tests/server/test_security.py tests/server/test_crash.py tests/server/test_load.py
	$(BIN)/python benchmarks/load.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
