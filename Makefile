# Two commands do everything on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SCALE  ?= paper
LAUNCHER ?=
LAUNCH := $(if $(LAUNCHER),hydra/launcher=$(LAUNCHER),)
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true

.PHONY: install demo test lint bench clean-runs reproduce-gq

install: $(VENV)/.installed

# torch is pinned first: an unpinned torch pulls several GB of CUDA packages; with 2.13.0 in place,
# the project's range installs nothing more.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: install
	$(PY) -m runs.train -m +experiment=demo method=adjoint norm=default,seminorm seed=0,1 $(LAUNCH)
	$(PY) -m runs.train -m +experiment=demo method=direct seed=0,1 $(LAUNCH)
	$(PY) -m analysis.table runs/demo

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -n 2

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) -m runs.bench

clean-runs:
	rm -rf runs/single runs/sweep runs/demo

# The GQ paper's tables and figures (Norcliffe & Deisenroth 2023): SCALE=smoke|quick|paper (default paper),
# LAUNCHER= a hydra/launcher option; results in $(GQ_OUT)/$(SCALE)/<experiment>/, tables printed by analysis.gq,
# figures by analysis/notebooks/gq.py. GQ_OVERRIDES are passed to every run (e.g. "device=cpu logger=none").
GQ_OUT ?= runs/gq
GQ_OVERRIDES ?=
reproduce-gq: install
	$(PY) -m runs.reproduce_gq --scale $(SCALE) --out $(GQ_OUT) $(if $(LAUNCHER),--launcher $(LAUNCHER),) $(GQ_OVERRIDES)
	$(PY) -m analysis.gq $(GQ_OUT)/$(SCALE)
	GQ_RUNS=$(GQ_OUT)/$(SCALE) PYTHONPATH=. MPLBACKEND=Agg $(PY) analysis/notebooks/gq.py
