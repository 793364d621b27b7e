# Two entry points: `make demo` (set up, then run the main job) and `make test` (set up, then test).
# Both create .venv in the repo root on first use and reuse it afterwards.
# llama-cpp-python is compiled without -march=native (GGML_NATIVE=OFF): a native build of 0.3.36
# crashed (SIGSEGV in llama_decode) on this project's AVX-512 machines; set CMAKE_ARGS to override.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.transferscope-installed
EXTRAS ?= dev,llamacpp,ray,inspect,lmeval
# pytest-xdist workers for `make test` (2: this project's 2-core machines); --dist loadfile keeps each
# test file on one worker, so a module-scoped fixture (the demo run of test_demo_content) is built
# once (xdist 3.8 under pytest 9 ignores xdist_group marks: --dist loadgroup spread them)
TEST_WORKERS ?= 2

.PHONY: setup bytecode browser demo test test-slow lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	CMAKE_ARGS="$${CMAKE_ARGS:--DGGML_NATIVE=OFF}" $(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $(STAMP)

# The package's bytecode, compiled as `pip install` compiles an installed package: an editable
# install compiles each module on first import, and never keeps it where PYTHONDONTWRITEBYTECODE
# is set (as on this project's machines), so every test subprocess compiled the sources again.
# Incremental: only changed files are compiled again.
bytecode: $(STAMP)
	@$(PY) -m compileall -q src

setup: $(STAMP)

# The report's browser test drives Debian's Chromium (no browser download); install it when we can.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "note: chromium not installed; the browser test will be skipped"; }

demo: setup bytecode
	HF_HUB_OFFLINE=1 $(VENV)/bin/transferscope demo

test: setup bytecode browser
	$(PY) scripts/check_tests.py
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(PY) scripts/check_types.py
	HF_HUB_OFFLINE=1 $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

test-slow: setup bytecode
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m slow

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(PY) scripts/check_types.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
