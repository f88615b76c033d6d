# Two commands matter: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JAX_STAMP := $(VENV)/.installed-jax
export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONHASHSEED ?= 0
# Test processes (pytest-xdist); each test file stays in one process, so its module fixtures are built once.
# `make test TEST_WORKERS=auto` uses every core; `TEST_WORKERS=0` runs in this process.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

.PHONY: demo test test-jax lint docs bench install install-jax clean

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

demo: $(STAMP)
	$(BIN)/neuroxai demo --overwrite

test: $(STAMP)
	$(PYTEST)

# The tests that run on Keras' JAX backend (a process runs the backend keras was first imported with).
test-jax: $(JAX_STAMP)
	KERAS_BACKEND=jax $(PYTEST) tests/backends

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
