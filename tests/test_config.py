"""Every config option composes and builds; the bench's harness loop computes exactly what a bare loop computes."""

from __future__ import annotations

import pytest
import torch
from conftest import CONF, make_config
from omegaconf import OmegaConf

from runs.build import ConfigError, DataMissing, build_method, build_solver, build_task, check_config

SOLVERS = sorted(p.stem for p in (CONF / "solver").glob("*.yaml"))
METHODS = sorted(p.stem for p in (CONF / "method").glob("*.yaml"))
NORMS = sorted(p.stem for p in (CONF / "norm").glob("*.yaml"))
TASKS = sorted(p.stem for p in (CONF / "task").glob("*.yaml"))
SCALES = sorted(p.stem for p in (CONF / "scale").glob("*.yaml"))


@pytest.mark.parametrize("solver", SOLVERS)
def test_every_solver_config_builds(solver):
    spec = build_solver(make_config(f"solver={solver}"))
    assert spec.name == solver
    assert (spec.rtol is not None) == spec.adaptive


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("norm", NORMS)
def test_method_norm_grid_is_valid_or_says_why(method, norm):
    cfg = make_config(f"method={method}", f"norm={norm}")
    try:
        built = build_method(cfg)
    except ConfigError as exc:
        # fixed-step-only methods (reversible_heun, mali) refuse the default adaptive solver, saying so
        assert (norm != "default" and f"norm={norm}" in str(exc)) or f"method={method} takes fixed steps" in str(exc)
    else:
        assert built.name == method and built.norm == norm


EXPERIMENTS = sorted(str(p.relative_to(CONF / "experiment").with_suffix(""))
                     for p in (CONF / "experiment").rglob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.parametrize("scale", ["smoke", "quick", "paper"])
def test_every_experiment_passes_the_key_check(experiment, scale):
    """The key check (runs.build.check_keys) knows every key the repository's own configs use."""
    check_config(make_config(f"+experiment={experiment}", f"scale={scale}"))


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("scale", ["smoke", "quick", "paper"])
def test_every_task_builds_at_every_scale(task, scale):
    cfg = make_config(f"task={task}", f"scale={scale}")
    check_config(cfg)
    try:
        built = build_task(cfg, torch.device("cpu"), torch.float32)
    except DataMissing as exc:  # paper-scale data (Speech Commands, MNIST, ...) is not on this offline machine
        pytest.skip(str(exc))
    assert built.dataset and built.metric
    assert sum(p.numel() for p in built.model.parameters()) > 0


def test_scale_changes_sizes_not_code():
    smoke, paper = make_config("scale=smoke"), make_config("scale=paper")
    assert smoke.task._target_ == paper.task._target_
    assert smoke.train.iterations < paper.train.iterations


@pytest.mark.parametrize("scale", SCALES)
def test_task_scale_files_hold_only_what_differs_from_their_scale(scale):
    """conf/scale/<scale>.yaml holds a scale's training defaults (over conf/config.yaml's); a task's own
    conf/task_scale/<task>/<scale>.yaml repeats none of them, so a default is changed in one place."""
    defaults = OmegaConf.merge(OmegaConf.load(CONF / "config.yaml").train,
                               OmegaConf.load(CONF / "scale" / f"{scale}.yaml").get("train", {}))
    for path in sorted(CONF.glob(f"task_scale/*/{scale}.yaml")):
        train = OmegaConf.load(path).get("train") or {}
        assert set(train) <= set(defaults), f"{path}: train keys that conf/config.yaml does not have"
        repeated = sorted(key for key, value in train.items() if defaults[key] == value)
        assert not repeated, f"{path} repeats its scale's default of train.{', train.'.join(repeated)}"


def test_a_task_scale_file_overrides_its_scale_and_the_scale_overrides_the_config():
    smoke = make_config("task=cnf_toy", "scale=smoke").train
    scale = OmegaConf.load(CONF / "scale" / "smoke.yaml").train
    task = OmegaConf.load(CONF / "task_scale" / "cnf_toy" / "smoke.yaml").train
    assert smoke.warmup_iters == scale.warmup_iters != OmegaConf.load(CONF / "config.yaml").train.warmup_iters
    assert smoke.iterations == task.iterations != scale.iterations


def test_harness_loop_computes_what_a_bare_torchdiffeq_loop_computes(monkeypatch):
    from runs.bench import overhead as bench_overhead

    monkeypatch.setattr(bench_overhead, "ITERATIONS", 6)
    monkeypatch.setattr(bench_overhead, "WARMUP", 1)
    cfg = make_config(*[o for o in bench_overhead.OVERRIDES if not o.startswith(("logger", "progress", "scale"))],
                      "train.iterations=6", "train.warmup_iters=1", "task.hidden=16", "task.batch_size=32")
    _, bare_loss = bench_overhead.bare_loop(cfg, torch.device("cpu"))
    _, harness_loss = bench_overhead.harness_loop(cfg, torch.device("cpu"))
    assert harness_loss == bare_loss
