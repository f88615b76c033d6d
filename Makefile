# Two commands matter: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JAX_STAMP := $(VENV)/.installed-jax
TORCH_STAMP := $(VENV)/.installed-torch
# A CPU-only PyTorch wheel file (a plain `pip install torch` from the package index pulls a multi-GB CUDA build).
TORCH_WHEEL ?= /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONHASHSEED ?= 0
# Test processes (pytest-xdist); each test file stays in one process, so its module fixtures are built once.
# `make test TEST_WORKERS=auto` uses every core; `TEST_WORKERS=0` runs in this process.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

.PHONY: demo test test-readme test-jax test-torch lint docs bench install install-jax install-torch clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,docs,lint,medical]"
	touch $(STAMP)

install: $(STAMP)

# JAX CPU wheels (about 90 MB): `make test` then also runs the cross-backend tests (tests/backends).
$(JAX_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,docs,lint,jax]"
	touch $(JAX_STAMP)

install-jax: $(JAX_STAMP)

# PyTorch from the CPU wheel file TORCH_WHEEL (about 200 MB): `make test-torch` runs the tests on Keras' torch backend.
$(TORCH_STAMP): $(STAMP)
	@test -f "$(TORCH_WHEEL)" || { echo "No PyTorch wheel at TORCH_WHEEL=$(TORCH_WHEEL): download a CPU wheel (https://download.pytorch.org/whl/cpu) and pass its path." >&2; exit 1; }
	$(BIN)/python -m pip install --quiet "$(TORCH_WHEEL)"
	touch $(TORCH_STAMP)

install-torch: $(TORCH_STAMP)

demo: $(STAMP)
	$(BIN)/neuroxai demo --overwrite

test: $(STAMP)
	$(PYTEST) -m "not readme"

# The README's and the quickstart page's code, run as written (trains for minutes: CI runs it after the suite).
test-readme: $(STAMP)
	$(PYTEST) -m readme tests/test_readme.py

# The tests that run on Keras' JAX backend (a process runs the backend keras was first imported with).
test-jax: $(JAX_STAMP)
	KERAS_BACKEND=jax $(PYTEST) tests/backends

# The same tests on Keras' PyTorch backend, and the TensorFlow <-> PyTorch round trip of saved models.
test-torch: $(TORCH_STAMP)
	KERAS_BACKEND=torch $(PYTEST) tests/backends

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples docs
	$(BIN)/ruff format --check src tests benchmarks examples docs
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

bench: $(STAMP)
	$(BIN)/python benchmarks/data_pipeline.py
	$(BIN)/python benchmarks/explain_speed.py

clean:
	rm -rf $(VENV) build dist docs/_build .pytest_cache src/*.egg-info
