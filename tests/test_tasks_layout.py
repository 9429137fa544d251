"""The shape of tasks/: each module directly in it is one task, data and networks live in tasks.data and
tasks.models, and no task seeds the global RNG (runs.loop.run does, once, before it builds the task)."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest
from conftest import CONF, ROOT
from omegaconf import OmegaConf

from tasks.base import Task

TASKS = ROOT / "tasks"
TASK_MODULES = sorted(p.stem for p in TASKS.glob("*.py") if p.stem not in ("__init__", "base"))


@pytest.mark.parametrize("name", TASK_MODULES)
def test_a_module_directly_in_tasks_is_one_task(name):
    module = importlib.import_module(f"tasks.{name}")
    defined = [obj for obj in vars(module).values()
               if inspect.isclass(obj) and issubclass(obj, Task) and obj.__module__ == module.__name__]
    assert len(defined) == 1, f"tasks/{name}.py defines {[c.__name__ for c in defined]}: one task per file"


def test_every_task_config_names_a_task_module_and_every_task_module_has_a_config():
    targets = {OmegaConf.load(path)._target_.rsplit(".", 2)[1] for path in (CONF / "task").glob("*.yaml")}
    assert targets == set(TASK_MODULES)


def _calls(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            names.append(ast.unparse(node.func))
    return names


def test_no_task_seeds_the_global_rng():
    global_seeding = {"torch.manual_seed", "torch.random.manual_seed", "np.random.seed", "numpy.random.seed",
                      "random.seed", "torch.cuda.manual_seed", "torch.cuda.manual_seed_all"}
    found = {str(path.relative_to(ROOT)): sorted(set(_calls(path)) & global_seeding) for path in TASKS.rglob("*.py")}
    assert not {path: calls for path, calls in found.items() if calls}
