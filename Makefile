# Stroma: `make demo` serves the site, `make test` runs the whole suite, `make check` lints and type-checks.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast check bench traceability clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt package.json
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@if command -v npm >/dev/null 2>&1; then npm ci --silent --no-audit --no-fund; \
	  else echo "npm not found: the camera scanner polyfill is skipped (wedge scanners work without it)"; fi
	touch $(STAMP)

demo: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo
	./scripts/demo.sh

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -m "not e2e" -x $(PYTEST_ARGS)

check: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

bench: venv
	$(PY) -m benchmarks $(BENCH_ARGS)

traceability: venv
	$(PY) manage.py traceability

clean:
	rm -rf $(VENV) var node_modules
