"""`python -m analysis.gq [runs/gq/<scale>]`: the GQ paper's tables (Norcliffe & Deisenroth 2023), reproduced.

The paper reports its experiments as figures (training time and test metric against model width, loss against wall
clock, gradient error against integration time); each is printed here as the table behind the figure, with the
methods as columns, mean ± std over seeds and the number of runs, and the published value beside each cell. No value
of the paper's figures was found (analysis/reference/gq.csv and gq.md: only settings and a repo notebook's printed
numbers), so every published cell says "pub. n/f"; the g1d table shows the repo notebook's numbers, labelled "repo
notebook, not paper". Failed runs are counted in each cell, never dropped. Writes <root>/gq_tables.md.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from record import RESULT, load_results, read_metrics, step_rows

REFERENCE = Path(__file__).resolve().parent / "reference" / "gq.csv"
NOT_FOUND = "pub. n/f"
ORDER = ["Direct", "Adjoint", "Seminorm", "GQ", "GQ (Wong–Zakai)", "SDE Direct", "SDE Adjoint"]
TASK_KEYS = ("width", "hidden_channels", "dataset", "num_times", "regular", "train_as", "ncosines")


def method_label(method: str, norm: str, train_as: object = None) -> str:
    """The paper's legend names (plotting/colors_and_styles.py): Direct, Adjoint, Seminorm, GQ, SDE Direct, ..."""
    base = {"direct": "Direct", "adjoint": "Adjoint", "gq": "GQ", "mali": "MALI", "checkpoint": "ACA"}.get(method,
                                                                                                          method)
    if method == "adjoint" and norm == "seminorm":
        base = "Seminorm"
    elif norm not in ("default", None) and method != "adjoint":
        base = f"{base} + {norm}"
    if train_as == "sde":
        return f"SDE {base}"
    if train_as == "wong_zakai":
        return f"{base} (Wong–Zakai)"
    return base


def _config(run_dir: str) -> dict:
    path = Path(run_dir) / ".hydra" / "config.yaml"
    if not path.exists():
        return {}
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


def load_experiment(root: Path) -> pd.DataFrame:
    """Every run below root, with the task and training settings from its Hydra config and the paper's label."""
    frame = load_results(root)
    if frame.empty:
        return frame
    extra = []
    for run_dir in frame["run_dir"]:
        cfg = _config(run_dir)
        task, train = cfg.get("task", {}), cfg.get("train", {})
        extra.append({**{f"cfg.{k}": task.get(k) for k in TASK_KEYS}, "cfg.lr": train.get("lr"),
                      "cfg.iterations": train.get("iterations")})
    frame = pd.concat([frame.reset_index(drop=True), pd.DataFrame(extra)], axis=1)
    frame["label"] = [method_label(m, n, t) for m, n, t in zip(frame["method"], frame["norm"], frame["cfg.train_as"])]
    return frame


def _cell(values: pd.Series, statuses: pd.Series, digits: str) -> str:
    ok = pd.to_numeric(values[statuses == "ok"], errors="coerce").dropna()
    failed = int((statuses != "ok").sum())
    if ok.empty:
        text = "—"
    elif len(ok) == 1:
        text = format(ok.iloc[0], digits)
    else:
        text = f"{format(ok.mean(), digits)} ± {format(ok.std(ddof=0), digits)}"
    text += f" (n={len(ok)}{f', {failed} failed' if failed else ''})"
    return f"{text} [{NOT_FOUND}]"


def pivot(frame: pd.DataFrame, row: str, value: str, digits: str = ".3g") -> pd.DataFrame:
    """Rows `row` (e.g. width), one column per method label, cells mean ± std (n) [published]."""
    labels = sorted(frame["label"].unique(), key=lambda s: (ORDER.index(s) if s in ORDER else len(ORDER), s))
    rows = []
    for key, group in frame.groupby(row, sort=True, dropna=False):
        cells = {row.removeprefix("cfg."): key}
        for label in labels:
            part = group[group["label"] == label]
            cells[label] = _cell(part[value], part["status"], digits) if len(part) else "—"
        rows.append(cells)
    return pd.DataFrame(rows)


def _section(title: str, table: pd.DataFrame) -> str:
    return f"#### {title}\n\n{table.to_markdown(index=False)}\n"


def width_tables(frame: pd.DataFrame, name: str, metric: str, metric_name: str, row: str = "cfg.width") -> str:
    """The figure layout of the width sweeps: training time vs width, metric vs width, NFE per iteration."""
    parts = [_section(f"{name}: training time (s, training steps only, evaluation excluded)",
                      pivot(frame, row, "train_seconds")),
             _section(f"{name}: {metric_name}", pivot(frame, row, metric)),
             _section(f"{name}: forward NFE per training iteration", pivot(frame, row, "fwd_nfe", ".4g")),
             _section(f"{name}: backward NFE per training iteration (GQ: solve + quadrature nodes)",
                      pivot(frame, row, "bwd_nfe", ".4g"))]
    return "\n".join(parts)


def reference_rows(experiment: str) -> pd.DataFrame:
    ref = pd.read_csv(REFERENCE)
    return ref[(ref["experiment"] == experiment) & ~ref["table"].str.startswith("setting")]


def g1d_notebook_table(frame: pd.DataFrame) -> str:
    """The repo notebook's comparison (width 3000, lr 1e-4, 200 epochs) beside ours; its numbers are not the paper's."""
    notebook = frame[(frame["cfg.width"] == 3000) & (frame["cfg.lr"] == 1e-4)]
    if notebook.empty:
        return ""
    ref = reference_rows("g1d")
    rows = []
    for label in ("Direct", "Adjoint", "GQ"):
        runs = notebook[(notebook["label"] == label) & (notebook["status"] == "ok")]
        steps = [step_rows(read_metrics(d)) for d in runs["run_dir"]]
        tail = [s[-10:] for s in steps if s]
        ours = {
            "total training time": runs["train_seconds"].mean() if len(runs) else math.nan,
            "mean epoch time epochs 190-200": sum(r["step_seconds"] for t in tail for r in t) / max(
                sum(len(t) for t in tail), 1) if tail else math.nan,
            "mean train MSE epochs 190-200": sum(r["loss"] for t in tail for r in t) / max(
                sum(len(t) for t in tail), 1) if tail else math.nan,
        }
        for column, value in ours.items():
            published = ref[(ref["row"] == label) & (ref["column"] == column)]["value"]
            rows.append({"method": label, "quantity": column,
                         "reproduced": "— (no finished run)" if math.isnan(value) else f"{value:.4g}",
                         "repo notebook, not paper": f"{float(published.iloc[0]):.4g}" if len(published) else "n/f"})
    return _section("g1d, width 3000, lr 1e-4, 200 epochs: ours beside the repo notebook g1d_example.ipynb "
                    "(repo notebook, not paper; hardware not stated)", pd.DataFrame(rows))


def toy_gradient_table(frame: pd.DataFrame) -> str:
    rows = []
    for label, group in frame.groupby("label"):
        ok = group[group["status"] == "ok"]
        row = {"method": label, "runs ok": f"{len(ok)}/{len(group)}"}
        for key in ("loss", "dz0", "da", "dT"):
            for stat in ("mean", "max"):
                values = pd.to_numeric(ok.get(f"{stat}_rel_error_{key}", pd.Series(dtype=float)), errors="coerce")
                row[f"{stat} rel. err. {key}"] = f"{values.mean():.2e} [{NOT_FOUND}]" if values.notna().any() \
                    else "—"
        rows.append(row)
    return _section("toy gradient (dz/dt = a z, L = z(T)^2): relative errors over the sweep of T", pd.DataFrame(rows))


TABLES = {
    "nested_spheres": ("nested spheres", "test_accuracy", "test accuracy (%)"),
    "sines10": ("sines, 10 regular times", "test_mse", "test MSE"),
    "sines50": ("sines, 50 regular times", "test_mse", "test MSE"),
    "g1d": ("g1d", "test_mse", "MSE"),
}


def render(root: Path) -> str:
    parts = [f"# GQ paper (Norcliffe & Deisenroth 2023), reproduced: {root}", "",
             f"Cells: mean ± std over seeds (n runs ok) [{NOT_FOUND} = the paper's value was not found: the paper's "
             "figures' numbers are not in any source we could reach; see analysis/reference/gq.md]. Training time = "
             "wall-clock time of the training steps, evaluation excluded (the authors' trainer.py measures the same).",
             ""]
    for name in sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []:
        frame = load_experiment(root / name)
        if frame.empty:
            continue
        parts.append(f"### {name}\n")
        if name in TABLES:
            title, metric, metric_name = TABLES[name]
            sweep = frame if name != "g1d" else frame[frame["cfg.lr"] != 1e-4]
            if not sweep.empty:
                parts.append(width_tables(sweep, title, metric, metric_name))
            if name == "g1d":
                parts.append(g1d_notebook_table(frame))
        elif name == "images":
            for dataset, group in frame.groupby("dataset"):
                parts.append(width_tables(group, f"images ({dataset})", "test_accuracy", "test accuracy (%)",
                                          row="cfg.hidden_channels"))
        elif name == "ou_sde":
            parts.append(width_tables(frame, "Ornstein–Uhlenbeck", "test_kl",
                                      "test KL of the SDE (GQ: the Wong–Zakai-trained parameters, solved as the SDE)"))
            wz = frame[frame["cfg.train_as"] == "wong_zakai"]
            if not wz.empty:
                parts.append(_section("Ornstein–Uhlenbeck: test KL of the Wong–Zakai ODE itself (training model)",
                                      pivot(wz, "cfg.width", "ode_test_kl")))
        elif name == "ou_ncosines":
            frame = frame.assign(train_minutes=frame["train_seconds"] / 60)
            parts.append(_section("Wong–Zakai ablation: training time (minutes) vs number of cosines N",
                                  pivot(frame, "cfg.ncosines", "train_minutes")))
            parts.append(_section("Wong–Zakai ablation: test KL of the SDE vs N",
                                  pivot(frame, "cfg.ncosines", "test_kl")))
        elif name == "toy_gradient":
            parts.append(toy_gradient_table(frame))
        else:
            parts.append(f"(no table layout for {name}; see python -m analysis.table {root / name})\n")
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, nargs="?", default=Path("runs/gq/paper"))
    args = parser.parse_args(argv)
    if not args.root.exists() or not any(args.root.rglob(RESULT)):
        print(f"no {RESULT} below {args.root}; run `make reproduce-gq` first", file=sys.stderr)
        return 1
    text = render(args.root)
    (args.root / "gq_tables.md").write_text(text)
    print(text)
    print(f"(written to {args.root / 'gq_tables.md'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
