# `make test` on a fresh machine: builds .venv from the pinned requirements, then runs pytest.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: test bench lint clean

$(VENV)/.installed: requirements.txt requirements-runner.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

test: $(VENV)/.installed
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache
