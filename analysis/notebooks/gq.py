# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # GQ paper (Norcliffe & Deisenroth 2023): the figures, regenerated from run directories
#
# Reads `runs/gq/<scale>` (set `RUNS_DIR`; `make reproduce-gq SCALE=quick` writes runs/gq/quick) and writes PNGs to
# `<RUNS_DIR>/figures/`: training time and test metric vs width per experiment, training loss vs wall clock, and the
# toy problem's gradient errors vs integration time. Runs as a plain script too (`python analysis/notebooks/gq.py`),
# which is how the tests execute it at smoke scale. The paper's own figure values were not found, so nothing
# published is overlaid.

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from analysis.gq import ORDER, TABLES, load_experiment
from record import read_metrics, step_rows

ROOT = Path(os.environ.get("RUNS_DIR", "runs/gq/paper"))
FIGURES = ROOT / "figures"
FIGURES.mkdir(parents=True, exist_ok=True)
written = []


def ordered(labels):
    return sorted(labels, key=lambda s: (ORDER.index(s) if s in ORDER else len(ORDER), s))


def save(fig, name):
    path = FIGURES / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)


# %% [markdown]
# ## Training time and test metric vs width (nested spheres, sines, g1d, images, OU)

# %%
SWEEPS = {**{k: (v[1], v[2], "cfg.width") for k, v in TABLES.items()},
          "images": ("test_accuracy", "test accuracy (%)", "cfg.hidden_channels"),
          "ou_sde": ("test_kl", "test KL (SDE)", "cfg.width")}
frames = {}
for name, (metric, metric_name, width) in SWEEPS.items():
    if not (ROOT / name).exists():
        continue
    frame = load_experiment(ROOT / name)
    if frame.empty:
        continue
    if name == "g1d":
        frame = frame[frame["cfg.lr"] != 1e-4]  # the notebook comparison is a table, not a sweep
    frames[name] = frame
    ok = frame[frame["status"] == "ok"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for label in ordered(ok["label"].unique()):
        part = ok[ok["label"] == label].groupby(width)
        for ax, column in zip(axes, ("train_seconds", metric)):
            stats = part[column].agg(["mean", "std"]).reset_index()
            ax.errorbar(stats[width], stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3, label=label)
    axes[0].set_ylabel("training time (s)")
    axes[1].set_ylabel(metric_name)
    for ax in axes:
        ax.set_xlabel(width.removeprefix("cfg."))
        ax.set_xscale("log")
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{name} ({ROOT.name} scale)")
    save(fig, f"{name}_times")

# %% [markdown]
# ## Training loss vs wall clock (the paper's width where it was run, else the widest)

# %%
LOSS_WIDTH = {"nested_spheres": 1000, "sines10": 2000, "sines50": 2000, "g1d": 1000, "ou_sde": 100, "images": 50}


def loss_curve(run_dir):
    rows = step_rows(read_metrics(run_dir))
    clock = pd.Series([r["step_seconds"] for r in rows]).cumsum()
    return clock, pd.Series([r["loss"] for r in rows])


for name, frame in frames.items():
    width = SWEEPS[name][2]
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        continue
    chosen = LOSS_WIDTH.get(name) if LOSS_WIDTH.get(name) in set(ok[width]) else ok[width].max()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for label in ordered(ok["label"].unique()):
        runs = ok[(ok["label"] == label) & (ok[width] == chosen)].sort_values("seed")
        if len(runs):
            clock, loss = loss_curve(runs["run_dir"].iloc[0])
            ax.plot(clock, loss, label=label)
    ax.set_xlabel("wall clock, training steps (s)")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(f"{name}, {width.removeprefix('cfg.')} {chosen} (seed of lowest index)")
    save(fig, f"{name}_loss_clock")

# %% [markdown]
# ## Toy gradient accuracy: relative errors vs integration time T

# %%
if (ROOT / "toy_gradient").exists():
    toy = load_experiment(ROOT / "toy_gradient")
    toy = toy[toy["status"] == "ok"]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
    for label in ordered(toy["label"].unique()):
        run = toy[toy["label"] == label].iloc[0]
        for ax, key in zip(axes, ("loss", "dz0", "da", "dT")):
            values = run[f"rel_error_{key}"]
            points = [(t, v) for t, v in zip(run["end_times"], values) if v is not None and v > 0]
            if points:
                ax.plot(*zip(*points), marker=".", label=label)
    for ax, key in zip(axes, ("L", "dL/dz0", "dL/da", "dL/dT")):
        ax.set_title(f"relative error of {key}")
        ax.set_xlabel("T")
        ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    save(fig, "toy_gradient")

# %%
print("\n".join(str(path) for path in written))
