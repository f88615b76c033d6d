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
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

.PHONY: demo test test-readme test-kernels test-jax test-torch lint docs bench install install-jax install-torch clean

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

# The numerics-sensitive tests (tests/numerics.py's tolerances) again on other CPU kernels, so that a tolerance that
# holds for one kernel family only fails here and not on a user's machine: oneDNN capped at AVX2 (as on an AVX2-only
# AMD EPYC), then Eigen instead of oneDNN (TensorFlow without oneDNN: ARM, macOS, TF_ENABLE_ONEDNN_OPTS=0). Which
# tests: explanations against their references, across batch sizes, graphs and heads, on token and 3-D models and
# for callable targets; the metrics that run the model; the TensorFlow <-> JAX round trip; of the model zoo, the
# special cases' mixed precision and the backbone whose numbers moved most between kernels (EfficientNetV2B0). The rest of `make test` compares nothing across computations or costs too much
# for CI (the whole zoo: 3 min). XLA's --xla_cpu_max_isa=AVX2 changed no bit of JAX's convolutions, matrix products or
# reductions here (jaxlib 0.10), so the JAX side runs as it is.
KERNEL_TESTS := tests/explain/test_stateless.py tests/explain/test_explainer.py tests/explain/test_methods.py \
	tests/explain/test_heads.py tests/explain/test_scale_and_tracing.py tests/explain/test_zoo_cases.py \
	tests/explain/test_zoo.py tests/explain/test_tokens.py tests/explain/test_volume_models.py \
	tests/explain/test_targets.py tests/evaluation/test_faithfulness.py tests/evaluation/test_reliance.py \
	tests/evaluation/test_sanity.py tests/runs/test_tta.py
KERNEL_SELECT := -k "(not test_zoo_cases.py or mixed_precision) and (not test_zoo.py or EfficientNetV2B0)"

# Both passes: 2 min 35 s on 2 cores (the TensorFlow <-> JAX round trip on Eigen only: the kernels furthest apart).
test-kernels: $(JAX_STAMP)
	ONEDNN_MAX_CPU_ISA=AVX2 $(PYTEST) $(KERNEL_TESTS) $(KERNEL_SELECT)
	TF_ENABLE_ONEDNN_OPTS=0 $(PYTEST) $(KERNEL_TESTS) tests/backends/test_cross_backend.py $(KERNEL_SELECT)

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
