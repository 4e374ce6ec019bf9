# The README's commands. Everything installs into .venv; re-running is safe and quick.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.datawheel-installed
TORCH  := torch==2.13.0

.PHONY: demo test bench install lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first, as the CPU wheel: a bare "torch" requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/datawheel demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	@for script in benchmarks/[!_]*.py; do \
		echo "== $$script"; $(BIN)/python $$script --json || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/pip install --quiet ruff
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf demo-kb .pytest_cache
