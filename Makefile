# Two commands do everything on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SCALE  ?= paper
LAUNCHER ?=
LAUNCH := $(if $(LAUNCHER),hydra/launcher=$(LAUNCHER),)
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true

.PHONY: install demo test lint bench clean-runs reproduce-reversible

.PHONY: install demo test lint bench clean-runs reproduce-seminorm

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

# McCallum & Foster 2024 (reversible solvers): every table at SCALE (smoke | quick | paper) into runs/reversible/$(SCALE)/,
# then the tables (authors' logs beside ours) and the figures (runs/reversible/$(SCALE)/figures/).
REVERSIBLE_OUT ?= runs/reversible/$(SCALE)
reproduce-reversible: install
	$(PY) -m runs.reproduce_reversible --scale $(SCALE) --out $(REVERSIBLE_OUT) $(if $(LAUNCHER),--launcher $(LAUNCHER),)
	$(PY) -m analysis.reversible $(REVERSIBLE_OUT)
	REVERSIBLE_RUNS=$(REVERSIBLE_OUT) $(PY) analysis/notebooks/reversible.py

# The seminorm paper (Kidger, Chen & Lyons 2021): one Hydra multirun per table (conf/experiment/seminorm/), results in
# runs/seminorm/$(SCALE)/, then the tables and figures. The experiment files carry the paper's seeds; smoke and quick
# run fewer. At paper scale Table 2 also gets its CIFAR-10 row (100 epochs of 250 batches of 200).
# SEMINORM_DIR moves the whole output (the tests use it).
SEMINORM_DIR ?= runs/seminorm/$(SCALE)
SEMINORM_TABLES := speech_commands cnf_images acrobot
SEMINORM_ARGS_smoke := seed=0,1 logger=none progress=false train.grad_error=false
SEMINORM_ARGS_quick := seed=0,1
SEMINORM_ARGS_paper :=
reproduce-seminorm: install
	@for table in $(SEMINORM_TABLES); do \
	  echo "== seminorm / $$table (scale=$(SCALE))"; \
	  $(PY) -m runs.train -m +experiment=seminorm/$$table scale=$(SCALE) hydra.sweep.dir=$(SEMINORM_DIR)/$$table \
	    $(SEMINORM_ARGS_$(SCALE)) $(LAUNCH) || exit 1; \
	done
	$(if $(filter paper,$(SCALE)),$(PY) -m runs.train -m +experiment=seminorm/cnf_images scale=paper \
	  hydra.sweep.dir=$(SEMINORM_DIR)/cnf_images task.data=cifar10 train.iterations=25000 $(LAUNCH))
	$(PY) -m analysis.seminorm $(SEMINORM_DIR)
	SEMINORM_RUNS=$(SEMINORM_DIR) MPLBACKEND=Agg PYTHONPATH=. $(PY) analysis/notebooks/seminorm.py

# The GQ paper's tables and figures (Norcliffe & Deisenroth 2023): SCALE=smoke|quick|paper (default paper),
# LAUNCHER= a hydra/launcher option; results in $(GQ_OUT)/$(SCALE)/<experiment>/, tables printed by analysis.gq,
# figures by analysis/notebooks/gq.py. GQ_OVERRIDES are passed to every run (e.g. "device=cpu logger=none").
GQ_OUT ?= runs/gq
GQ_OVERRIDES ?=
reproduce-gq: install
	$(PY) -m runs.reproduce_gq --scale $(SCALE) --out $(GQ_OUT) $(if $(LAUNCHER),--launcher $(LAUNCHER),) $(GQ_OVERRIDES)
	$(PY) -m analysis.gq $(GQ_OUT)/$(SCALE)
	GQ_RUNS=$(GQ_OUT)/$(SCALE) PYTHONPATH=. MPLBACKEND=Agg $(PY) analysis/notebooks/gq.py
