"""The seminorm authors' protocol and their acrobot norm: `norm=authors_acrobot` on a hand-made adjoint state,
`protocol=authors`'s split sizes and padding, its metric-pass schedule, scheduler steps, best-model selection, and a
resumed run that goes on exactly as an uninterrupted one."""

from __future__ import annotations

import functools
import math
import os
import signal

import numpy as np
import pytest
import torch
import torchdiffeq
from conftest import make_config

from record import pass_rows, read_metrics, step_rows
from runs.build import ConfigError, check_config
from runs.loop import run
from solvers.adjoint import ContinuousAdjoint
from solvers.base import SolverSpec
from solvers.norms import authors_acrobot, get_norm, seminorm
from tasks.data.uea import load_uea
from tasks.models.ncde import CDEVectorField
from tasks.ncde_classification import NCDEClassification

# A hand-made adjoint state (a_t, y, a_y, *a_theta) of a 2-element state and two parameter tensors.
A_T = torch.tensor(7.0)
Y = torch.tensor([3.0, 4.0])
A_Y = torch.tensor([1.0, -1.0])
P1 = torch.tensor([2.0, 2.0, 2.0, 2.0])
P2 = torch.tensor([0.0, 0.0, 10.0, 10.0, 10.0, 10.0])


def test_authors_acrobot_by_hand():
    aug = (A_T, Y, A_Y, P1, P2)
    # times=2: slices of 2 x 2 = 4 of the flat state [7 | 3 4 | 1 -1 | 2 2 2 2 | 0 0 10 10 10 10]:
    # [3, 4, 1, -1] (RMS sqrt(27 / 4)) and [2, 2, 2, 2] (RMS 2); a_t is never in a slice.
    assert authors_acrobot(aug, times=2).item() == pytest.approx(math.sqrt(27 / 4))
    # times=3: [3, 4, 1, -1, 2, 2] (RMS sqrt(35 / 6)) and [2, 2, 0, 0, 10, 10] (RMS sqrt(208 / 6)): the second slice,
    # all parameter adjoints, decides
    assert authors_acrobot(aug, times=3).item() == pytest.approx(math.sqrt(208 / 6))
    # the parameters' order matters, as in the flat state torchdiffeq 0.1 built
    assert authors_acrobot((A_T, Y, A_Y, P2, P1), times=2).item() == pytest.approx(math.sqrt(200 / 4))
    # times=8: the first slice is the 14 values after a_t, the second starts past the end, empty (RMS NaN): Python's
    # max in their make_norm keeps the first's RMS
    assert authors_acrobot(aug, times=8).item() == pytest.approx(math.sqrt((9 + 16 + 1 + 1 + 16 + 400) / 14))
    # with one observation time the slices are y and a_y: the seminorm itself
    assert authors_acrobot(aug, times=1) == seminorm(aug)
    assert get_norm("authors_acrobot", times=3)(aug) == authors_acrobot(aug, times=3)
    with pytest.raises(ValueError, match="only method=adjoint"):
        get_norm("authors_acrobot")(aug)


def test_the_adjoint_sizes_authors_acrobot_by_its_observation_times():
    """method=adjoint hands torchdiffeq the norm sized by len(ts): the same backward solve as torchdiffeq given
    that norm directly."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).double()
    calls = {"n": 0}

    class Field(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, t, y):
            calls["n"] += 1
            return self.net(y)

    y0 = torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(4, 3)
    ts = torch.linspace(0, 1, 5, dtype=torch.float64)
    method = ContinuousAdjoint(SolverSpec("dopri5", rtol=1e-5, atol=1e-5), norm="authors_acrobot")
    method.solve(Field(), y0, ts).pow(2).sum().backward()
    ours = method.nfe.take().bwd_nfe
    out = torchdiffeq.odeint_adjoint(Field(), y0, ts, rtol=1e-5, atol=1e-5, method="dopri5",
                                     adjoint_options={"norm": functools.partial(authors_acrobot, times=len(ts))})
    before = calls["n"]
    out.pow(2).sum().backward()
    assert ours == calls["n"] - before > 0


def test_authors_split_padding_and_initialisation_of_japanese_vowels():
    torch.manual_seed(0)
    task = NCDEClassification(0, torch.device("cpu"), torch.float32, data="uea/JapaneseVowels", split="authors",
                              padding="nan", authors_init=True, hidden=4, width=4, depth=1)
    torch.manual_seed(0)  # the authors' order: the vector field first, so it draws first after the seed
    first = CDEVectorField(13, 4, 4, 1)
    assert torch.equal(task.model.field.matrix_field.hidden[0].weight, first.hidden[0].weight)
    assert (len(task.train_y), len(task.val_y), len(task.test_y)) == (448, 96, 96)  # of the 640 pooled series
    assert torch.bincount(task.train_y).tolist() == [43, 45, 83, 52, 41, 38, 49, 56, 41]
    assert torch.bincount(task.val_y).tolist() == [9, 10, 18, 11, 9, 8, 10, 12, 9]
    assert torch.bincount(task.test_y).tolist() == [9, 10, 17, 11, 9, 8, 11, 12, 9]
    assert task.pass_splits == ("train", "val", "test") and "448 train / 96 val / 96 test" in task.dataset
    coeffs = task.train_coeffs
    assert coeffs.shape == (448, 29, 13) and not torch.isnan(coeffs).any()
    # time runs 0..28 in every row, padding included
    assert torch.equal(coeffs[..., 0], torch.arange(29.0).expand(448, 29))
    # a padded tail is constant at the last observation (torchcde's fill of the NaN padding)
    train_x, _, test_x, _, _ = load_uea("JapaneseVowels", "data", download=False)
    lengths = sorted({len(s) for s in train_x + test_x})
    assert lengths[0] < 29 == lengths[-1]
    short = [i for i in range(448) if (coeffs[i, -1, 1:] == coeffs[i, -2, 1:]).all()]
    assert short, "some training series are shorter than 29"
    for i in short[:5]:
        n = int((coeffs[i, 1:, 1:] != coeffs[i, :-1, 1:]).any(-1).nonzero().max()) + 2  # observed length
        assert torch.equal(coeffs[i, n:, 1:], coeffs[i, n - 1, 1:].expand(29 - n, 12))
    # normalised with the training set's observed values: mean 0, std 1 per channel over the observed entries
    observed = torch.cat([coeffs[i, :int((coeffs[i, 1:, 1:] != coeffs[i, :-1, 1:]).any(-1).nonzero().max()) + 2, 1:]
                          for i in range(448)])
    assert observed.mean(0).abs().max() < 0.05 and (observed.std(0) - 1).abs().max() < 0.05


def test_harness_padding_is_kept_by_default():
    task = NCDEClassification(0, torch.device("cpu"), torch.float32, data="uea/JapaneseVowels", hidden=4, width=4,
                              depth=1)
    assert (len(task.train_y), len(task.test_y)) == (270, 370) and task.pass_splits == ("train", "test")
    coeffs = task.train_coeffs
    short = [i for i in range(270) if coeffs[i, -1, 0] < 28]
    assert short and all((coeffs[i, -1] == coeffs[i, -2]).all() for i in short)  # time stops with the series


SMOKE_AUTHORS = ["task=speech_commands", "protocol=authors", "norm=seminorm", "train.grad_error=false"]


def _passes(run_dir, final: bool) -> list[dict]:
    return [row for row in pass_rows(read_metrics(run_dir)) if row["final"] == final]


def test_metric_pass_schedule_scheduler_and_best_model(tmp_path):
    # 32 training series in batches of 16: 2 steps an epoch, 12 epochs; passes after epochs 0 and 10, and the last
    cfg = make_config(*SMOKE_AUTHORS, "train.iterations=24", "train.lr_plateau_patience=0", "train.lr=0.05")
    result = run(cfg, tmp_path)
    assert result["status"] == "ok", result["error"]
    during = _passes(tmp_path, final=False)
    assert [(row["step"], row["pass"], row["epoch"]) for row in during] == [
        (1, "train", 0), (1, "val", 0), (21, "train", 10), (21, "val", 10), (23, "train", 11), (23, "val", 11)]
    assert result["metric_passes"] == 3 and result["steps_per_epoch"] == 2
    assert result["pass_train_bwd_nfe"] == sum(r["pass_bwd_nfe"] for r in during if r["pass"] == "train") > 0
    assert result["pass_val_bwd_nfe"] == sum(r["pass_bwd_nfe"] for r in during if r["pass"] == "val") > 0
    # ReduceLROnPlateau(patience=0) stepped once per pass with its train-set loss: replayed here
    replay = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(replay, patience=0)
    train_passes = [row for row in during if row["pass"] == "train"]
    lrs = []
    for row in train_passes:
        lrs.append(replay.param_groups[0]["lr"])
        plateau.step(row["pass_loss"])
    assert [row["lr"] for row in train_passes] == pytest.approx(lrs)
    assert result["lr_final"] == pytest.approx(replay.param_groups[0]["lr"])
    # the kept model: the pass with the lowest train-set loss (by the authors' 1.0001 margin), evaluated at the end
    best = None
    for row in train_passes:
        if best is None or row["pass_loss"] * 1.0001 < best["pass_loss"]:
            best = row
    assert result["best_step"] == best["step"] and result["best_train_loss"] == best["pass_loss"]
    final = {row["pass"]: row for row in _passes(tmp_path, final=True)}
    assert set(final) == {"train", "val", "test"} and all(row["step"] == 24 for row in final.values())
    assert final["train"]["pass_loss"] == best["pass_loss"]  # the same model on the same data
    assert result["final_test_bwd_nfe"] == final["test"]["pass_bwd_nfe"] > 0
    assert result["metric_value"] == pytest.approx(final["test"]["pass_metrics"]["accuracy"])
    assert result["protocol"] == "authors" and len(step_rows(read_metrics(tmp_path))) == 24


def test_a_resumed_authors_run_goes_on_as_an_uninterrupted_one(tmp_path, monkeypatch):
    from runs.loop import Trainer
    from runs.resume import Interrupted

    args = [*SMOKE_AUTHORS, "train.iterations=8", "train.metric_pass_every=1", "train.lr_plateau_patience=0",
            "train.lr=0.05", "train.checkpoint_every=0"]
    whole = run(make_config(*args), tmp_path / "whole")
    original = Trainer.train_step

    def step_then_signal(self, step):
        row = original(self, step)
        if step == 4:  # mid-epoch, after the passes of epochs 0 and 1
            os.kill(os.getpid(), signal.SIGTERM)
        return row

    monkeypatch.setattr(Trainer, "train_step", step_then_signal)
    with pytest.raises(Interrupted):
        run(make_config(*args), tmp_path / "cut")
    monkeypatch.undo()
    resumed = run(make_config(*args), tmp_path / "cut")

    def numbers(run_dir):
        return [{k: v for k, v in row.items() if k != "pass_seconds"} for row in pass_rows(read_metrics(run_dir))]

    assert numbers(tmp_path / "cut") == numbers(tmp_path / "whole") and len(numbers(tmp_path / "whole")) == 4 * 2 + 3
    for key in ("pass_train_bwd_nfe", "pass_val_bwd_nfe", "best_step", "best_train_loss", "lr_final",
                "lr_reductions", "final_test_bwd_nfe", "metric_value", "bwd_nfe"):
        assert resumed[key] == whole[key], key


def test_protocol_settings_are_checked():
    with pytest.raises(ConfigError, match="protocol=authors is not defined for task=cnf_toy"):
        check_config(make_config("task=cnf_toy", "protocol=authors"))
    with pytest.raises(ConfigError, match="train.select_best=True acts at metric passes"):
        check_config(make_config("train.select_best=true"))
    cfg = make_config("+experiment=seminorm/speech_commands", "scale=paper", "protocol=authors")
    assert (cfg.task.split, cfg.task.padding, cfg.task.jump_at_end, cfg.task.eval_batch_size) == ("authors", "nan",
                                                                                                   True, 1024)
    assert (cfg.train.metric_pass_every, cfg.train.lr_plateau_patience, cfg.train.select_best) == (10, 2, True)
    acrobot = make_config("+experiment=seminorm/acrobot", "scale=paper", "protocol=authors")
    assert acrobot.task.eval_batch_size == 256 and (acrobot.solver.rtol, acrobot.solver.atol) == (1e-4, 1e-4)


def test_acrobot_under_the_authors_protocol_and_norm(tmp_path):
    result = run(make_config("task=acrobot", "protocol=authors", "norm=authors_acrobot", "train.grad_error=false"),
                 tmp_path)
    assert result["status"] == "ok", result["error"]
    assert result["norm"] == "authors_acrobot" and result["bwd_nfe"] > 0
    assert result["pass_train_bwd_nfe"] > 0 and result["pass_val_bwd_nfe"] > 0 and result["final_test_bwd_nfe"] > 0
    assert np.isfinite(result["metric_value"])
