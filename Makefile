# resdiff — `make test` (the CI command) and `make all-figures` work on a fresh clone:
# they create .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PRESET ?= quick
# MNIST: the project's shared copy when present (never committed), else the user's
# RESDIFF_DATA_DIR or cache (see README).
SHARED_MNIST := $(abspath ../shared/mnist)
ifneq ($(wildcard $(SHARED_MNIST)/train-images-idx3-ubyte.gz),)
export RESDIFF_DATA_DIR ?= $(SHARED_MNIST)
endif
# keep BLAS from oversubscribing the two cores numba already uses
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

FIGS   := $(addprefix fig,1 2 3 4 5 6 7 8)

.PHONY: install lint test test-slow test-slurm verify bench bench-train all-figures clean $(FIGS)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# the CPU build of PyTorch first: a bare `torch` requirement would pull CUDA wheels
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev,train]'
	touch $@

install: $(VENV)/.installed

test: install lint
	$(PY) -m pytest -q

# pyflakes, pycodestyle and bugbear (pyproject.toml [tool.ruff]), and the layout that
# `ruff format` gives (run it to mend a failing check)
lint: install
	$(VENV)/bin/ruff check resdiff tests bench scripts docs
	$(VENV)/bin/ruff format --check resdiff tests bench scripts docs

test-slow: install
	$(PY) -m pytest -q -m slow

# a real single-node Slurm on this machine (root, Debian: installs slurm-wlm and munge)
test-slurm: install
	$(PY) -m pip install --quiet -e '.[slurm]'
	bash scripts/slurm-localhost.sh start
	$(PY) -m pytest -q -m slurm tests/test_executor.py

# recompute a slice of every committed paper dataset and compare (docs/numerics.md)
verify: install
	$(VENV)/bin/resdiff verify --preset paper

bench: install
	$(PY) -m bench.run --out BENCHMARKS.md

# only the training table of `make bench` (printed, BENCHMARKS.md untouched)
bench-train: install
	$(PY) -m bench.time_epochs --bench

all-figures: install
	$(VENV)/bin/resdiff fig all --preset $(PRESET)

# a static pattern rule: an implicit rule (plain `fig%:`) is never tried for .PHONY targets
$(FIGS): fig%: install
	$(VENV)/bin/resdiff fig $* --preset $(PRESET)

# figures/data/paper/ is kept: its CSVs are committed, its checkpoints hours of training
clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
	find figures/data -mindepth 1 -maxdepth 1 ! -name paper -exec rm -rf {} + 2>/dev/null || true
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
