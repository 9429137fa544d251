"""The one-way data flow, held by reading the code: conf -> runs -> (tasks, solvers) -> run directory -> analysis.

A task never imports a solver or the training code; a solver never imports a task or the training code; analysis
and the run record never import training code, so reading results never needs torch. Imports are read with `ast`
(module level and inside functions alike), relative imports resolved against their package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

# package -> top-level names it must never import
RULES: dict[str, set[str]] = {
    "tasks": {"solvers", "runs", "analysis"},
    "solvers": {"tasks", "runs", "analysis"},
    "analysis": {"runs", "solvers", "tasks", "torch"},
    "record": {"runs", "solvers", "tasks", "analysis", "torch"},
}


def imported_modules(path: Path, package: str, root: Path) -> list[tuple[int, str]]:
    """(line, module) for every import statement in one file; relative imports resolved."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x / from ..y import z: relative to the file's own package
                parts = [package, *path.parent.relative_to(root / package).parts]
                base = parts[: len(parts) - node.level + 1]
                found.append((node.lineno, ".".join([*base, *([node.module] if node.module else [])])))
            elif node.module:
                found.append((node.lineno, node.module))
    return found


def forbidden_imports(root: Path, rules: dict[str, set[str]] = RULES) -> list[str]:
    """'path:line imports module' for every import below `root` that crosses the data flow."""
    bad = []
    for package, forbidden in rules.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, module in imported_modules(path, package, root):
                if module.split(".")[0] in forbidden:
                    bad.append(f"{path.relative_to(root)}:{line} imports {module}")
    return bad


def test_no_package_imports_across_the_data_flow():
    assert forbidden_imports(ROOT) == []


def test_the_check_catches_a_forbidden_import(tmp_path):
    """The check is not vacuous: the same tree with one forbidden import added (a task reaching into solvers, a
    relative import from analysis into runs) fails it, naming the file and line."""
    for package in RULES:
        (tmp_path / package / "sub").mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "tasks" / "sub" / "new_task.py").write_text("import math\n\ndef f():\n    from solvers.base import X\n")
    (tmp_path / "analysis" / "sub" / "new_table.py").write_text("from ...runs import loop\n")
    (tmp_path / "record" / "ok.py").write_text("import json\nfrom record.files import RESULT\n")
    assert forbidden_imports(tmp_path) == ["tasks/sub/new_task.py:4 imports solvers.base",
                                           "analysis/sub/new_table.py:1 imports runs"]


def test_reading_results_imports_no_training_code():
    """A fresh interpreter that imports the analysis entry points and the record has not imported torch, runs,
    solvers or tasks: a results folder can be read on a machine without them."""
    code = ("import sys, analysis.table, analysis.status, analysis.seminorm, analysis.gq, analysis.reversible, record, "
            "analysis.report, analysis.verdict\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'runs', 'solvers', 'tasks')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
