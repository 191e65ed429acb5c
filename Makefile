# smtpfw — the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test lint typecheck unit unit-compiled compiled pure bench system-deps lab-deps clean fuzz

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

## ruff, mypy and the whole test suite (installs system packages first when run as root), then
## the suite again on the compiled build.
test: system-deps $(STAMP) lab-deps lint typecheck unit unit-compiled

lab-deps: $(STAMP)
	VENV=$(VENV) ./scripts/lab-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check analyzer tests benchmarks captures scripts setup.py
	$(BIN)/ruff format --check analyzer tests benchmarks captures scripts setup.py
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy analyzer

unit: $(STAMP) pure
	$(BIN)/pytest -q

## The optional compiled build (setup.py): the hot modules compiled with mypyc, in place.
compiled: $(STAMP)
	SMTPFW_USE_MYPYC=1 $(BIN)/python setup.py -q build_ext --inplace >/dev/null

## Back to pure Python: a compiled module left beside an edited source would shadow it.
pure:
	rm -rf build
	find analyzer -name '*.so' -delete

## The suite again on the compiled build (the lab's real traffic aside); pure Python afterwards.
unit-compiled: compiled
	$(BIN)/pytest -q -p no:cacheprovider --compiled -m "not lab" || { $(MAKE) -s pure; exit 1; }
	$(MAKE) -s pure

## Speed and memory against tshark on large generated captures (see benchmarks/README.md).
## Times the compiled build (`make compiled`), then goes back to pure Python.
bench: $(STAMP) compiled
	$(BIN)/python -m compileall -q analyzer  # timed runs should not compile the sources
	$(BIN)/python benchmarks/run.py || { $(MAKE) -s pure; exit 1; }
	$(BIN)/python benchmarks/correlate_scale.py || { $(MAKE) -s pure; exit 1; }
	$(BIN)/python benchmarks/floods.py || { $(MAKE) -s pure; exit 1; }
	$(MAKE) -s pure

## A longer fuzzing campaign (tests/fuzz): make fuzz N=20000 SEED=7; --save keeps new buckets.
N    ?= 2000
SEED ?= 1
fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz -n $(N) --seed $(SEED)

clean: pure
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
