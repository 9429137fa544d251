"""The gradient-methods benchmark runs every method on a problem and reports consistent counts (no timing claims)."""

from __future__ import annotations

import pytest
import torch

from runs.bench import methods as bench_methods


def test_methods_section_measures_every_method(monkeypatch):
    rows = bench_methods.run_problem(["task=nested_spheres", "task.width=8", "task.batch_size=20",
                                      "task.train_per_class=20", "solver.rtol=1e-3", "solver.atol=1e-3"],
                                     torch.device("cpu"), repeats=1, iterations=1)
    by = {(r.method, r.norm): r for r in rows}
    for key in (("direct", "default"), ("adjoint", "default"), ("adjoint", "seminorm"), ("gq", "default"),
                ("gq", "seminorm")):
        assert key in by and by[key].error is None and len(by[key].ms) == 1
    # the same torchdiffeq forward solve under direct, adjoint and gq (the methods that step a tableau themselves,
    # like reversible or checkpoint, take other steps)
    assert len({r.fwd for r in rows if r.error is None and r.method.split(",")[0] in ("direct", "adjoint", "gq")}) == 1
    assert any(r.error and r.error.startswith("n/a:") for r in rows if r.method == "mali")  # fixed-step only
    assert by[("direct", "default")].bwd == 0 and by[("gq", "default")].bwd > 0
    assert by[("direct", "default")].graph_mib > by[("adjoint", "default")].graph_mib
    text = bench_methods.render("tiny", rows)
    assert "| adjoint | default |" in text and "1.00" in text


def test_unknown_problem_is_refused_before_any_section_runs(tmp_path):
    from runs import bench

    with pytest.raises(SystemExit, match=r"--problem 4 is not a problem .* 1 \(small CNF\), 2 \(nested spheres"):
        bench.main(["--problem", "4", "--out", str(tmp_path)])
    assert not list(tmp_path.iterdir())  # no section wrote its table


def test_benchmarks_use_only_the_methods_public_api():
    """runs/bench/ imports no underscore names and nothing of the stepping core: the benchmarks measure methods
    through what any user of them could call."""
    import ast
    from pathlib import Path

    for path in (Path(__file__).resolve().parents[1] / "runs" / "bench").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module, names = node.module or "", [alias.name for alias in node.names]
            elif isinstance(node, ast.Import):
                module, names = "", [alias.name for alias in node.names]
            else:
                continue
            assert not module.startswith("solvers.core"), (path.name, module)
            assert not any(part.startswith("_") and part != "__future__" for part in module.split(".")), path.name
            assert not any(name.split(".")[-1].startswith("_") for name in names), (path.name, names)
