# Two commands do everything on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SCALE  ?= paper
LAUNCHER ?=
LAUNCH := $(if $(LAUNCHER),hydra/launcher=$(LAUNCHER),)
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true

.PHONY: install demo test lint bench clean-runs gpu-wheels gpu-check

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

# GPU checks (runs/gpu_check.sh): on a GPU machine that lacks the project's packages, `make gpu-wheels` here first
# fetches them as wheels into .whl/ (ignored by git; carry it there); `make gpu-check` runs the checks with the venv.
GPU_EXTRA_WHEELS := scikit-learn==1.7.2 joblib==1.5.2 threadpoolctl==3.6.0 pytest==8.4.2 pluggy==1.6.0 \
	iniconfig==2.1.0 tabulate==0.9.0
gpu-wheels:
	../shared/tools/gpu-wheels .whl $(GPU_EXTRA_WHEELS)

gpu-check: install
	PY=$(PY) bash runs/gpu_check.sh

clean-runs:
	rm -rf runs/single runs/sweep runs/demo

# Sweeps on a cluster (README "Sweeps on a cluster (SLURM)"). A one-node SLURM cluster on this machine, for trying
# `LAUNCHER=slurm` and for tests/test_slurm.py (root; installs Debian's slurmctld/slurmd/munge if missing):
#   make slurm-up; export SLURM_CONF=$(SLURM_DIR)/slurm.conf; ...; make slurm-down
SLURM_DIR ?= /tmp/fastgrad-slurm
RUNS ?= runs
.PHONY: slurm-up slurm-down slurm-test status

slurm-up:
	FASTGRAD_SLURM_DIR=$(SLURM_DIR) tests/slurm/cluster.sh up

slurm-down:
	FASTGRAD_SLURM_DIR=$(SLURM_DIR) tests/slurm/cluster.sh down

slurm-test: install
	FASTGRAD_SLURM_DIR=$(SLURM_DIR) $(PY) -m pytest -q tests/test_slurm.py

status: install
	$(PY) -m analysis.status $(RUNS)

# A paper's tables and figures: `make reproduce-seminorm | reproduce-gq | reproduce-reversible [SCALE=smoke|quick|paper]`.
# Every grid of conf/experiment/<paper>/*.yaml (its `sweep.<scale>` lines) runs as a Hydra multirun into OUT
# (default runs/<paper>/<scale>), then analysis.<paper> prints and writes the tables and analysis/notebooks/<paper>.py
# the figures (OUT/figures/), and analysis.report the page OUT/report.html (tables with a verdict per row, the figures,
# the sweep status, provenance). LAUNCHER="slurm hydra.launcher.partition=gpu" hands the cells to a cluster;
# ARGS="..." adds overrides to every run (smoke adds logger=none progress=false).
ARGS ?=
ARGS_smoke := logger=none progress=false
reproduce-%: install
	$(PY) -m runs.reproduce $* --scale $(SCALE) --out $(or $(OUT),runs/$*/$(SCALE)) $(ARGS_$(SCALE)) $(ARGS) $(LAUNCH)
	$(PY) -m analysis.$* $(or $(OUT),runs/$*/$(SCALE))
	RUNS_DIR=$(or $(OUT),runs/$*/$(SCALE)) PYTHONPATH=. MPLBACKEND=Agg $(PY) analysis/notebooks/$*.py
	$(PY) -m analysis.report $(or $(OUT),runs/$*/$(SCALE)) --paper $*
