# smtpfw — the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench system-deps lab-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

system-deps:
	./scripts/system-deps.sh

## The main job on the bundled captures; results in reports/.
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

## ruff, mypy and the whole test suite (installs system packages first when run as root).
test: system-deps $(STAMP) lab-deps lint typecheck unit

lab-deps: $(STAMP)
	VENV=$(VENV) ./scripts/lab-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check analyzer tests benchmarks captures scripts

typecheck: $(STAMP)
	$(BIN)/mypy analyzer

unit: $(STAMP)
	$(BIN)/pytest -q

## Speed and memory against tshark on large generated captures (see benchmarks/README.md).
bench: $(STAMP)
	$(BIN)/python -m compileall -q analyzer  # timed runs should not compile the sources
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/correlate_scale.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
