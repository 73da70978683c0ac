# Two entry points for a new machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tunesmith-installed
# Extras the test run installs; CI adds `browser` (Playwright, for the report's headless-Chromium test).
TEST_EXTRAS ?= test

.PHONY: demo test venv install clean bench lint airflow-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the project's metadata changes; the package itself is editable.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$(TEST_EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	cd examples && ../$(BIN)/tunesmith delete quickstart --yes --missing-ok
	cd examples && ../$(BIN)/tunesmith run quickstart.yaml
	cd examples && ../$(BIN)/tunesmith show quickstart

# Two pytest-xdist workers: most tests wait on subprocesses, signals and timeouts, so two overlap well even on two
# cores (a 2-core machine, fresh clone of 7daef7b, the test extras, 2026-12-08: 15:01 on two workers for 2,889
# tests, 22.7 CPU-minutes: at the line, to bring down; 11:24 and 16.2 for 2,798 tests at 6a8657e; the suite is
# CPU-bound, and must stay under 15
# minutes: tests/conftest.py runs numeric libraries on one thread). --dist loadgroup keeps the Ray tests on one worker (one local cluster).
# PYTEST_WORKERS=0 runs in one process; PYTEST_ARGS passes more, e.g. PYTEST_ARGS='-k cycle'.
PYTEST_WORKERS ?= 2
# Bytecode first: where PYTHONDONTWRITEBYTECODE is set (this machine kind sets it), every CLI and trial-worker start
# the suite makes compiled src/ anew, about 0.2 s of CPU each (a 3-trial `tunesmith run`: 2.26 -> 2.08 CPU-s).
test: $(STAMP)
	$(BIN)/python -m compileall -q src >/dev/null
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The overhead benchmark needs nothing beyond the core install; the others need `pip install -e '.[bench]'`.
bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py

# Static checks (not part of `make test`, to keep CI lean): mypy on src/, ruff's correctness rules.
lint: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ruff check src tests benchmarks --select E,F,W,B,UP --ignore E501
	$(BIN)/python -m mypy src/tunesmith --ignore-missing-imports
	$(BIN)/python -m pytest -q tests/test_typed_api.py  # a user's mypy on the public API (mypy: the dev extra)

# The Airflow DAG under deploy/ loaded by Airflow itself, in a throwaway venv (Airflow is hundreds of packages and
# pins its own versions, so it stays out of the test venv; `make test` skips that test while the venv is absent).
AIRFLOW_VENV ?= .airflow-venv
airflow-check: $(STAMP)
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet 'apache-airflow==3.2.2'
	TUNESMITH_AIRFLOW_PYTHON=$(AIRFLOW_VENV)/bin/python $(BIN)/python -m pytest -q tests/test_deploy.py -k airflow

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) examples/tunesmith.db* examples/.tunesmith
