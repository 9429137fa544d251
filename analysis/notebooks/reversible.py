# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # McCallum & Foster 2024 — the reversible-solvers paper's figures, regenerated
#
# Reads the run directories of `make reproduce-reversible` (`RUNS_DIR`, default `runs/reversible/paper`) and
# writes PNGs into `<runs>/figures/`: memory and gradient error against the integration length (v1), runtime against
# the number of steps (v2), and the convergence slopes (v2). Dashed lines: the authors' figures from their committed
# result logs (`analysis/reference/reversible.csv`, "authors' logs"). Run it as a script or open it with jupytext.

# %%
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from analysis.reversible import KIND, REVERSIBLE, load, reference, time_length

RUNS = Path(os.environ.get("RUNS_DIR", "runs/reversible/paper"))
FIGURES = RUNS / "figures"
FIGURES.mkdir(parents=True, exist_ok=True)
written = []


def authors(experiment, row):
    """(x labels, values) of one row of the authors' logs."""
    ref = reference(experiment)
    ref = ref[ref["row"] == row]
    return list(ref["column"]), list(ref["value"])


# %% [markdown]
# ## Memory and gradient error against the integration length (v1, scalar neural ODE, midpoint, h = 0.01)

# %%
frame = load(RUNS / "grad_error")
fig, (ax_mem, ax_err) = plt.subplots(1, 2, figsize=(10, 4))
if not frame.empty:
    frame = frame[frame["status"] == "ok"].assign(T=lambda d: [time_length(r) for _, r in d.iterrows()])
    for methods, name in ((("direct", "direct_rk"), "discretise-then-optimise"), (("reversible",), "reversible")):
        sub = frame[frame["method"].isin(methods)].groupby("T")["graph_mib"].mean()
        ax_mem.plot(sub.index, sub.values, "o-", label=f"{name} (ours, graph MiB)")
    for method, name in (("reversible", "reversible"), ("adjoint", "continuous adjoint (OTD)")):
        sub = frame[frame["method"] == method].groupby("T")["grad_abs_error_sum"].mean()
        ax_err.semilogy(sub.index, sub.values, "o-", label=f"{name} (ours)")
for row, name in (("reversible gradient error vs DTO", "reversible"),
                  ("continuous adjoint (OTD) gradient error vs DTO", "continuous adjoint (OTD)")):
    cols, values = authors("regression", row)
    ax_err.semilogy([float(c[2:]) for c in cols], values, "--", label=f"{name} ({KIND})")
ax_mem.set(xlabel="integration length T", ylabel="memory held for backward [MiB]", title="memory")
ax_err.set(xlabel="integration length T", ylabel="sum |g - g_DTO|", title="gradient error against DTO")
ax_mem.legend(fontsize=7)
ax_err.legend(fontsize=7)
fig.tight_layout()
fig.savefig(FIGURES / "memory_and_gradient_error.png", dpi=120)
written.append(FIGURES / "memory_and_gradient_error.png")

# %% [markdown]
# ## Runtime against the number of steps (v2; ours: seconds per training iteration, authors: per gradient)

# %%
frame = load(RUNS / "complexity")
fig, ax = plt.subplots(figsize=(6, 4))
if not frame.empty:
    frame = frame[frame["status"] == "ok"]
    frame = frame.assign(steps=[round(time_length(r) / 0.01) for _, r in frame.iterrows()])
    for label, group in frame.groupby("label"):
        sub = group.groupby("steps")["seconds_per_iter"].mean()
        ax.semilogy(sub.index, sub.values, "o-", label=f"{label} (ours)")
for row in [f"recursive checkpointing, {k} checkpoints" for k in (2, 4, 8)] + [REVERSIBLE]:
    cols, values = authors("complexity", row)
    ax.semilogy([int(c.split()[0]) for c in cols], values, "--", alpha=0.6, label=f"{row} ({KIND})")
ax.set(xlabel="number of steps", ylabel="seconds", title="cost of a gradient")
ax.legend(fontsize=6)
fig.tight_layout()
fig.savefig(FIGURES / "runtime_vs_steps.png", dpi=120)
written.append(FIGURES / "runtime_vs_steps.png")

# %% [markdown]
# ## Convergence order (v2: y' = 0.5 y, T = 5; slopes of the log-log lines)

# %%
path = RUNS / "convergence" / "convergence.json"
fig, ax = plt.subplots(figsize=(6, 4))
if path.exists():
    for row in json.loads(path.read_text())["rows"]:
        style = "o-" if row["method"] == "reversible" else "x--"
        ax.loglog(row["dt"], row["error"], style,
                  label=f"{row['scheme']} {row['method']} (slope {row['slope']:.2f})")
ax.set(xlabel="step size", ylabel="|y_N - e^2.5|", title="convergence order")
ax.legend(fontsize=6)
fig.tight_layout()
fig.savefig(FIGURES / "convergence.png", dpi=120)
written.append(FIGURES / "convergence.png")

# %%
for path in written:
    print(path)
