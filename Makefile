# truescore: set-up and everyday commands. Every target creates and reuses .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint imports eval bench serve clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev,spark,peers]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/truescore demo

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

# the layers as contracts ([tool.importlinter] in pyproject.toml): engines import no store, job or door; no cycles
imports: $(STAMP)
	$(BIN)/lint-imports

eval: $(STAMP)
	$(BIN)/python -m eval

bench: $(STAMP)
	$(BIN)/python -m bench

serve: $(STAMP)
	$(BIN)/truescore serve

clean:
	rm -rf $(VENV) truescore-demo.db* .pytest_cache

# ---- contributor lanes (CONTRIBUTING.md): the quick loop, the type checker, and everything CI checks
.PHONY: test-fast typecheck check

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow" -n 2

typecheck: $(STAMP)
	$(BIN)/mypy

check: $(STAMP)
	@status=0; \
	$(MAKE) --no-print-directory lint || status=1; \
	$(MAKE) --no-print-directory imports || status=1; \
	$(MAKE) --no-print-directory typecheck || status=1; \
	$(MAKE) --no-print-directory test || status=1; \
	exit $$status
