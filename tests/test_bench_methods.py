"""The gradient-methods benchmark runs every method on a problem and reports consistent counts (no timing claims)."""

from __future__ import annotations

import pytest
import torch

from runs.bench import methods as bench_methods


def test_methods_section_measures_every_method(monkeypatch):
    """Acceptance: every row has the two gradient-error columns; the adjoint and GQ each appear with and without the
    warm start, GQ without it paired with the adjoint without it and GQ with it with the adjoint with it; the GQ
    ablation block is there; the forward solves agree; the noise and the intervals are printed."""
    rows = bench_methods.run_problem(["task=nested_spheres", "task.width=8", "task.batch_size=20",
                                      "task.train_per_class=20", "solver.rtol=1e-3", "solver.atol=1e-3"],
                                     torch.device("cpu"), repeats=2, iterations=1)
    by = {r.label: r for r in rows}
    pairs = {"adjoint_core, no warm start": "adjoint", "adjoint_core, warm start": "adjoint_core, no warm start",
             "gq, no warm start": "adjoint_core, no warm start", "gq": "adjoint_core, warm start"}
    for label, against in {**pairs, "direct": "adjoint", "adjoint": None, "adjoint + seminorm": "adjoint"}.items():
        row = by[label]
        assert row.error is None and len(row.samples) == 2 and row.against == against
        assert row.theta_error is not None and row.y0_error is not None
    assert by["adjoint"].theta_error < 1e-3 and by["gq"].y0_error < 1e-3  # rtol 1e-3, against the 1e-10 reference
    # the same torchdiffeq forward solve under direct, both adjoints and gq (methods that step a tableau themselves,
    # like reversible or checkpoint, take other steps)
    same_forward = ("direct", "adjoint", "gq")
    assert len({r.fwd for r in rows if r.error is None and r.label.split(",")[0].split(" ")[0] in same_forward}) == 1
    assert any(r.error and r.error.startswith("n/a:") for r in rows if r.label == "mali")  # fixed-step only
    assert by["direct"].bwd == 0 and by["gq"].bwd > 0 and by["gq"].nodes == 3
    assert by["direct"].graph_mib > by["adjoint"].graph_mib
    text = bench_methods.render("tiny", rows)
    assert "dL/dθ rel. err. | dL/dy0 rel. err." in text and "| noise |" in text and "GQ ablation" in text
    for label, against in pairs.items():
        if against != "adjoint":
            assert f"| {label} | " in text and f" | {against} | " in text.split(f"| {label} | ")[1].splitlines()[0]
    assert text.count("| on | on | ours (gtol 0.2, min 3) | 0.1 x forward") == 1 and "1 (reference)" in text


def test_paired_ratio_and_noise():
    """A ratio pairs sample k of round r of two rows; the bootstrap interval of its median brackets it."""
    a = bench_methods.Row("a", "default", ms=[[10.0, 12.0], [11.0, 30.0]])
    b = bench_methods.Row("b", "default", ms=[[5.0, 6.0], [5.5, 15.0]])
    assert bench_methods.ratio(a, b) == (2.0, 2.0, 2.0)
    assert bench_methods.ratio(a, a)[0] == 1.0
    low, mid, high = sorted(bench_methods.ratio(b, bench_methods.Row("c", "default", ms=[[5, 7], [4, 20]])))
    assert low <= mid <= high
    assert bench_methods.noise(a) == pytest.approx((16.5 - 10.75) / 2 / 11.5)


def test_unknown_problem_is_refused_before_any_section_runs(tmp_path):
    from runs import bench

    with pytest.raises(SystemExit, match=r"--problem 5 is not a problem .* 1 \(small CNF\), 2 \(nested spheres"):
        bench.main(["--problem", "5", "--out", str(tmp_path)])
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
