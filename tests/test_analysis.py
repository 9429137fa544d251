"""analysis.table on result files in the real format: seeds pooled, failures shown, the seminorm change computed."""

from __future__ import annotations

import json
import math

import pytest

from analysis.table import main, summarise
from record import RunDir, RunResult, load_results


def _result(tmp_path, name, **fields):
    base = {"task": "cnf_toy", "solver": "dopri5", "rtol": 1e-3, "atol": 1e-6, "method": "adjoint", "norm": "default",
            "device": "cpu", "status": "ok", "error": None, "metric": "test_nll", "fwd_nfe": 20.0,
            "seconds_per_iter": 0.1, "graph_mib": 1.0, "peak_cuda_mib": None, "peak_rss_mib": 300.0}
    RunDir(tmp_path / name).write_result(RunResult.from_json({**base, **fields}))


@pytest.fixture
def runs_dir(tmp_path):
    _result(tmp_path, "a0", seed=0, bwd_nfe=40.0, metric_value=1.0)
    _result(tmp_path, "a1", seed=1, bwd_nfe=60.0, metric_value=3.0)
    _result(tmp_path, "s0", seed=0, norm="seminorm", bwd_nfe=30.0, metric_value=2.0)
    _result(tmp_path, "s1", seed=1, norm="seminorm", bwd_nfe=20.0, metric_value=2.0)
    _result(tmp_path, "s2", seed=2, norm="seminorm", status="diverged", error="Diverged: loss is nan at step 3",
            bwd_nfe=float("nan"), metric_value=None)
    _result(tmp_path, "d0", seed=0, method="direct", bwd_nfe=0.0, metric_value=2.5)
    return tmp_path


def test_table_pools_seeds_and_computes_the_change(runs_dir):
    table = summarise(load_results(runs_dir)).set_index(["method", "norm"])
    default = table.loc[("adjoint", "default")]
    assert default["metric_mean"] == pytest.approx(2.0) and default["metric_std"] == pytest.approx(1.0)
    assert default["bwd_nfe"] == pytest.approx(50.0)
    semi = table.loc[("adjoint", "seminorm")]
    assert semi["bwd_nfe"] == pytest.approx(25.0)  # the diverged seed is not averaged in ...
    assert semi["bwd_nfe_change_pct"] == pytest.approx(-50.0)
    assert (semi["seeds_ok"], semi["seeds"]) == (2, 3)  # ... but it is counted
    assert semi["status"] == "diverged x1"
    assert math.isnan(table.loc[("direct", "default")]["bwd_nfe_change_pct"])  # no backward solve to compare


def test_failed_cells_are_shown_not_dropped(runs_dir):
    _result(runs_dir, "bad", seed=0, norm="rms", status="failed", error="invalid config: nope", bwd_nfe=None,
            metric_value=None)
    assert main([str(runs_dir)]) == 0
    text = (runs_dir / "table.md").read_text()
    assert "| rms " in text and "failed x1: invalid config: nope" in text
    assert "diverged x1: Diverged: loss is nan at step 3" in text
    assert "-50.0%" in text and "baseline" in text
    assert (runs_dir / "table.csv").exists()


def test_nan_written_as_string_is_read_back_as_a_number(tmp_path):
    _result(tmp_path, "x", seed=0, bwd_nfe=float("nan"), metric_value=1.0)
    assert json.loads((tmp_path / "x" / "result.json").read_text())["bwd_nfe"] == "nan"
    frame = load_results(tmp_path)
    assert math.isnan(frame["bwd_nfe"].iloc[0])


def test_an_empty_directory_is_an_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 1
    assert "no result.json" in capsys.readouterr().err
