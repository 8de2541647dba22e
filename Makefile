# The two commands a user needs (see README.md): `make demo` and `make test`.
# Both create .venv themselves; nothing is installed by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hpc-seg-installed
DEMO_OUT ?= runs/demo

.PHONY: setup demo test test-fast gpu-dry-run gpu-bundle slurm-up slurm-down browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: any other spec would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/hpc-seg run jobs/demo.toml --out $(DEMO_OUT)

slurm-up:
	slurm/local-cluster up

slurm-down:
	slurm/local-cluster down

# The whole suite, SLURM integration tests included (they need root to install the local cluster).
# Chromium from Debian for the report's headless-browser test (tests/report); idempotent.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# The GPU checks at toy sizes on CPU (same code as on a GPU; see README "GPU checks"): a check that
# raises or hangs fails this. Runs before the suite, so pytest's summary stays the last line.
gpu-dry-run: setup
	$(VENV)/bin/hpc-seg bench gpu --dry-run --out runs/gpu-checks-dry-run

# What a GPU node without a package index lacks (Ray, Optuna, pydicom...), for its Python 3.12, as
# one archive that travels with the checkout (README "GPU checks").
gpu-bundle: setup
	$(PY) cluster/offline-bundle --python 3.12 --skip-file cluster/gpu-node-packages.txt --out .whl/site.tar.xz --max-mb 58

test: setup gpu-dry-run slurm-up browser
	RAY_AUTH_MODE=disabled $(VENV)/bin/pytest

# Unit tests only: no SLURM, no Ray.
test-fast: setup browser
	$(VENV)/bin/pytest -m "not slurm and not ray and not slow"

clean:
	rm -rf $(VENV) runs .pytest_cache
