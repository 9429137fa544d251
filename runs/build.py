"""Config -> task, gradient method, optimiser: the one place that joins `tasks` and `solvers`.

Everything a config can get wrong is caught here, before training, as a `ConfigError` whose message is one
sentence naming the key: unknown keys, wrong value types (checked against the constructor's type hints),
impossible combinations (checked by the classes themselves).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import random
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from solvers.base import GradientMethod, SolverSpec
from tasks.base import DataUnavailable, Task

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
# Keys of a config group that describe it rather than being constructor arguments.
_META_KEYS = ("_target_", "name")
# Arguments the harness supplies itself.
_TASK_FIXED = ("seed", "device", "dtype")
_METHOD_FIXED = ("solver", "norm")


class ConfigError(ValueError):
    """A config that cannot run; the message is one sentence for the user."""


class DataMissing(ConfigError):
    """The task's data is not on this machine and cannot be downloaded here."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name} was asked for, but CUDA is not available here; use device=auto or cpu")
    return device


def resolve_dtype(name: str) -> torch.dtype:
    dtypes = {"float32": torch.float32, "float64": torch.float64}
    if name not in dtypes:
        raise ConfigError(f"dtype={name!r} is not supported; choose one of {', '.join(dtypes)}")
    return dtypes[name]


def _import(target: str, group: str) -> type:
    module_name, _, attr = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{group}._target_={target!r} cannot be imported ({exc})") from None


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin in (dict, Mapping) or hint is dict:
        return isinstance(value, dict)
    return True


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def instantiate(node: DictConfig, group: str, fixed: Sequence[str], **supplied: Any) -> Any:
    """Build `node._target_` from the node's keys, checking names and types against its constructor."""
    if "_target_" not in node:
        raise ConfigError(f"{group} has no _target_ naming the class to build")
    cls = _import(node._target_, group)
    kwargs = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if k not in _META_KEYS}
    params = inspect.signature(cls.__init__).parameters
    hints = typing.get_type_hints(cls.__init__)
    accepted = [p for p in params if p != "self" and p not in fixed]
    for key, value in kwargs.items():
        if key not in accepted:
            hint = _did_you_mean(key, accepted, group + ".")
            raise ConfigError(f"{group}.{key} is not a setting of {cls.__name__}{hint}; "
                              f"its settings are: {', '.join(accepted)}")
        hint = hints.get(key, inspect.Parameter.empty)
        if not _matches(value, hint):
            raise ConfigError(f"{group}.{key} must be {_type_name(hint)}, got {value!r}")
    try:
        return cls(**supplied, **kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from None


def build_solver(cfg: DictConfig) -> SolverSpec:
    node = OmegaConf.to_container(cfg.solver, resolve=True)
    known = {"name", "rtol", "atol", "step_size", "max_num_steps", "options"}
    unknown = set(node) - known
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"solver.{key} is not a solver setting{_did_you_mean(key, sorted(known), 'solver.')}; "
                          f"settings are: {', '.join(sorted(known))}")
    try:
        return SolverSpec(**node)
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from None


def build_method(cfg: DictConfig, solver: SolverSpec | None = None) -> GradientMethod:
    solver = solver or build_solver(cfg)
    method = instantiate(cfg.method, "method", _METHOD_FIXED, solver=solver, norm=cfg.norm.name)
    if not isinstance(method, GradientMethod):
        raise ConfigError(f"method._target_={cfg.method._target_} is not a GradientMethod")
    return method


def seed_everything(seed: int) -> None:
    """The one place a run's global random state is set (torch, numpy, random), right before its task is built: a
    task's model initialisation draws from it, its data from generators salted by the seed (tasks.base)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def build_task(cfg: DictConfig, device: torch.device, dtype: torch.dtype) -> Task:
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool):
        raise ConfigError(f"seed must be an integer, got {cfg.seed!r}")
    try:
        task = instantiate(cfg.task, "task", _TASK_FIXED, seed=cfg.seed, device=device, dtype=dtype)
    except DataUnavailable as exc:
        raise DataMissing(f"data unavailable: {exc}") from None
    if not isinstance(task, Task):
        raise ConfigError(f"task._target_={cfg.task._target_} is not a Task")
    return task


def _did_you_mean(key: str, choices: Sequence[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


@functools.cache
def _schema() -> dict[str, set[str]]:
    """The keys each plain block may hold, read from the configs themselves (one source): the top level and the
    train/grad_check/fault blocks from conf/config.yaml, the option groups' nodes from every option of the group.
    Nodes built from a class (task, method) and the solver are checked against their constructors instead."""
    base = OmegaConf.load(CONF_DIR / "config.yaml")
    groups = [next(iter(item)) if isinstance(item, dict) else item for item in OmegaConf.to_container(base.defaults)]
    schema = {"": {str(k) for k in base if k not in ("defaults", "hydra")} | {g for g in groups if g != "_self_"}
              | {"sweep"}}  # sweep: an experiment file's reproduction grids (runs.reproduce)
    schema[""].discard("task_scale")  # package-global groups: their keys land in the blocks above
    schema[""].discard("task_protocol")
    for block in ("train", "grad_check", "fault"):
        schema[block] = {str(k) for k in base[block]} | _OPTIONAL.get(block, set())
    for group in ("norm", "scale", "logger", "protocol"):
        schema[group] = {str(k) for path in (CONF_DIR / group).glob("*.yaml") for k in _group_node(path, group)}
    return schema


def _group_node(path: Path, group: str) -> DictConfig:
    """An option file's own node: the file itself, or its `<group>:` node when it is `# @package _global_` (as the
    scale files are, to set train defaults too)."""
    node = OmegaConf.load(path)
    if path.read_text().lstrip().startswith("# @package _global_"):
        return node.get(group) or OmegaConf.create({})
    return node


# Keys a block may carry that the base config leaves out (adding them there would change every run's fingerprint).
_OPTIONAL = {"grad_check": {"step_size"}}


def check_keys(cfg: DictConfig) -> None:
    """Every key of the composed config must be one the configs define: a misspelt key, even one added with `+`,
    fails with one sentence naming it and the closest valid one."""
    schema = _schema()
    for block, allowed in schema.items():
        node = cfg if block == "" else cfg.get(block)
        if not isinstance(node, DictConfig):
            continue
        for key in node:
            if key not in allowed:
                name = f"{block}.{key}" if block else str(key)
                where = f"{block} settings" if block else "top-level settings"
                hint = _did_you_mean(str(key), sorted(allowed), f"{block}." if block else "")
                raise ConfigError(f"{name} is not a setting{hint}; {where}: {', '.join(sorted(allowed))}")


def check_config(cfg: DictConfig) -> None:
    """Everything about the config that can be checked before building anything: its keys, the seed, training."""
    check_keys(cfg)
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool):
        raise ConfigError(f"seed must be an integer, got {cfg.seed!r}")
    check_train(cfg)


def check_train(cfg: DictConfig) -> None:
    train = cfg.train
    for key in ("iterations", "eval_every", "warmup_iters", "checkpoint_every", "metric_pass_every",
                "stop_after_epochs"):
        value = train[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"train.{key} must be a non-negative integer, got {value!r}")
    if train.iterations < 1:
        raise ConfigError("train.iterations must be at least 1")
    if not isinstance(train.lr, (int, float)) or not train.lr > 0:
        raise ConfigError(f"train.lr must be a positive number, got {train.lr!r}")
    if train.optimizer not in ("adam", "adamw"):
        raise ConfigError(f"train.optimizer={train.optimizer!r} is not supported; choose adam or adamw")
    patience = train.lr_plateau_patience
    if patience is not None and (not isinstance(patience, int) or isinstance(patience, bool) or patience < 0):
        raise ConfigError(f"train.lr_plateau_patience must be null or a non-negative integer, got {patience!r}")
    if not isinstance(train.select_best, bool):
        raise ConfigError(f"train.select_best must be true or false, got {train.select_best!r}")
    if not train.metric_pass_every:
        for key, off in (("lr_plateau_patience", None), ("select_best", False), ("stop_after_epochs", 0)):
            if train[key] != off:
                raise ConfigError(f"train.{key}={train[key]} acts at metric passes, and train.metric_pass_every=0 "
                                  f"runs none; set train.metric_pass_every (e.g. 10, the authors' protocol)")
    protocol = cfg.protocol.name
    if protocol != "harness" and not (CONF_DIR / "task_protocol" / cfg.task.name / f"{protocol}.yaml").exists():
        have = sorted(p.parent.name for p in CONF_DIR.glob(f"task_protocol/*/{protocol}.yaml"))
        raise ConfigError(f"protocol={protocol} is not defined for task={cfg.task.name} (no "
                          f"conf/task_protocol/{cfg.task.name}/{protocol}.yaml); it is for: {', '.join(have)}")
    if cfg.fault.kind not in (None, "nan_loss", "oom", "error", "preempt"):
        raise ConfigError(f"fault.kind={cfg.fault.kind!r} is not a fault; choose null, nan_loss, oom, error or preempt")


def check_passes(cfg: DictConfig, task: Task) -> None:
    """Metric passes need a task that has them (`Task.pass_batches`)."""
    if cfg.train.metric_pass_every and not task.pass_splits:
        raise ConfigError(f"train.metric_pass_every={cfg.train.metric_pass_every} needs metric passes, and "
                          f"task={cfg.task.name} has none; set train.metric_pass_every=0")


def build_optimizer(cfg: DictConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg.train.optimizer]
    return cls(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
