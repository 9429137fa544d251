# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Seminorm paper: backward NFE over training
#
# Regenerates the figure of Kidger, Chen & Lyons (2021) shown in the authors' README (`imgs/nfe.png`): backward
# function evaluations against training progress, mean ± std over seeds, for the default norm and the seminorm.
# One panel per experiment x data set x tolerance, from the run directories of `make reproduce-seminorm`.
#
# - `seminorm_heldout_bwd_nfe.{png,pdf}`: backward NFE of one forward+backward pass on held-out data at each
#   evaluation (the authors' figure plots the validation set's);
# - `seminorm_train_bwd_nfe.{png,pdf}`: backward NFE of every training step (a running mean over ~2% of the steps);
# - `seminorm_val_pass_bwd_nfe.{png,pdf}` (runs under protocol=authors): backward NFE of each metric pass over the
#   whole validation set — the authors' figure itself (their metrics.py plots val `backward_nfe` per pass);
# - `seminorm_figure_data.csv`: the plotted curves (mean and std per norm and step), so the figures can be checked.
#
# Run as a notebook (`jupytext --to notebook`) or as a script:
# `RUNS_DIR=runs/seminorm/quick python analysis/notebooks/seminorm.py`.

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt
import pandas as pd

from analysis.seminorm import NORM_LABELS, load_curves

RUNS_DIR = Path(os.environ.get("RUNS_DIR", "runs/seminorm/paper"))
OUT_DIR = Path(os.environ.get("FIGURES_DIR", str(RUNS_DIR / "figures")))
OUT_DIR.mkdir(parents=True, exist_ok=True)
COLOURS = {"paper_default": "tab:red", "default": "tab:orange", "seminorm": "tab:blue", "rms": "tab:green"}

curves = load_curves(RUNS_DIR)
runs = curves.groupby(["task", "data", "rtol", "atol", "norm", "seed"]).ngroups
print(f"{len(curves)} logged points from {runs} runs in {RUNS_DIR}")

# %% [markdown]
# Mean and standard deviation over seeds at each step, per panel (task, data, tolerances) and norm.

# %%
PANEL = ["task", "data", "rtol", "atol"]
summary = (
    curves.groupby([*PANEL, "kind", "norm", "step"])["bwd_nfe"]
    .agg(mean="mean", std=lambda v: v.std(ddof=0), seeds="count")
    .reset_index()
)
summary.to_csv(OUT_DIR / "seminorm_figure_data.csv", index=False)
summary.head()


# %%
def plot(kind: str, title: str, stem: str) -> plt.Figure | None:
    data = summary[summary["kind"] == kind]
    if data.empty:
        print(f"no {kind} counts: {stem} not drawn")
        return None
    panels = list(data.groupby(PANEL).groups)
    columns = min(3, max(1, len(panels)))
    rows = max(1, -(-len(panels) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for ax, key in zip(axes.flat, panels):
        task, dataset, rtol, atol = key
        panel = data[(data[PANEL] == pd.Series(dict(zip(PANEL, key)))).all(axis=1)]
        for norm, line in panel.groupby("norm"):
            # long runs log thousands of steps: plot a running mean over ~2% of them (the CSV keeps every step)
            window = max(1, len(line) // 50)
            line = line.assign(mean=line["mean"].rolling(window, min_periods=1).mean(),
                               std=line["std"].rolling(window, min_periods=1).mean())
            ax.plot(line["step"], line["mean"], color=COLOURS.get(norm), label=NORM_LABELS.get(norm, norm),
                    marker="o" if len(line) < 12 else None, markersize=3)
            ax.fill_between(line["step"], line["mean"] - line["std"], line["mean"] + line["std"],
                            color=COLOURS.get(norm), alpha=0.25, linewidth=0)
        ax.set_title(f"{task}: {dataset}\nrtol={rtol:g}, atol={atol:g}", fontsize=9)
        ax.set_xlabel("training step")
        ax.set_ylabel("backward NFE")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    for suffix in ("png", "pdf"):
        fig.savefig(OUT_DIR / f"{stem}.{suffix}", dpi=120)
    return fig


# %%
plot("heldout", "Backward NFE on held-out data over training (mean ± std over seeds)", "seminorm_heldout_bwd_nfe")

# %%
plot("train", "Backward NFE of each training step (mean ± std over seeds)", "seminorm_train_bwd_nfe")

# %%
plot("pass_val", "Backward NFE of each metric pass over the validation set (mean ± std over seeds)",
     "seminorm_val_pass_bwd_nfe")
print(f"figures written to {OUT_DIR}")
