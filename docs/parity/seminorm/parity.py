"""Parity table: this harness (protocol=authors) beside the authors' code, JapaneseVowels stand-in, 100 epochs.
usage: python parity.py HARNESS_SWEEP_DIR [AUTHORS_LOG_DIR]   (the project's venv, from the repository root)"""
import json, sys
from pathlib import Path
sys.path.insert(0, ".")
from record import load_results, pass_rows, read_metrics, step_rows

sweep = Path(sys.argv[1])
logs = Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).resolve().parent / "logs")
ours, theirs = {}, {}
for r in load_results(sweep).itertuples():
    steps = step_rows(read_metrics(r.run_dir))
    passes = pass_rows(read_metrics(r.run_dir))
    final = {p["pass"]: p for p in passes if p["final"]}
    if "test" not in final:
        continue  # not finished
    during = [p for p in passes if not p["final"]]
    ours[(r.norm, r.seed)] = {
        "steps_bwd": sum(s["bwd_nfe"] for s in steps), "steps_fwd": sum(s["fwd_nfe"] for s in steps),
        "bnfe": sum(p["pass_bwd_nfe"] for p in during if p["pass"] == "train"),
        "val": sum(p["pass_bwd_nfe"] for p in during if p["pass"] == "val"),
        "test": final["test"]["pass_bwd_nfe"], "test_fwd": final["test"]["pass_fwd_nfe"],
        "acc": round(final["test"]["pass_metrics"]["accuracy"] * final["test"]["items"]),
        "passes": len(during) // 2, "best": r.best_step, "lr": r.lr_final,
        "train_pass_bwd": [p["pass_bwd_nfe"] for p in during if p["pass"] == "train"],
        "val_pass_bwd": [p["pass_bwd_nfe"] for p in during if p["pass"] == "val"]}
for norm, name in (("paper_default", "default"), ("seminorm", "seminorm")):
    for seed in (0, 1):
        path = logs / f"{name}_e100_s{seed}.json"
        if not path.exists():
            continue
        d = json.loads(path.read_text())
        theirs[(norm, seed)] = {
            "steps_bwd": d["training_backward_nfe_total"], "steps_fwd": d["training_forward_nfe_total"],
            "bnfe": d["paper_bnfe_train_metric_passes"], "val": d["val_metric_passes_backward_nfe"],
            "test": d["final_test_metrics"]["backward_nfe"], "test_fwd": d["final_test_metrics"]["forward_nfe"],
            "acc": round(d["final_test_metrics"]["accuracy"] * 96), "passes": len(d["history"]),
            "train_pass_bwd": [h["train_metrics"]["backward_nfe"] for h in d["history"]],
            "val_pass_bwd": [h["val_metrics"]["backward_nfe"] for h in d["history"]]}

def change(a, b):
    return f"{100 * (b - a) / a:+.1f}%"

counts = [("steps_bwd", "backward NFE, Σ 100 training steps"), ("bnfe", "paper BNFE: Σ train-set metric passes"),
          ("val", "Σ val metric passes, backward"), ("test", "final test pass, backward"),
          ("steps_fwd", "forward NFE, Σ training steps"), ("test_fwd", "final test pass, forward"),
          ("acc", "test accuracy (of 96)")]
for who, table in (("harness (protocol=authors)", ours), ("authors' code", theirs)):
    print(f"\n#### {who}\n")
    print("| count | s0 default | s0 seminorm | change | s1 default | s1 seminorm | change | pooled change |")
    print("|:---|---:|---:|---:|---:|---:|---:|---:|")
    for key, label in counts:
        cells = []
        for seed in (0, 1):
            a, b = table.get(("paper_default", seed), {}).get(key), table.get(("seminorm", seed), {}).get(key)
            cells += [a, b, change(a, b) if a and b is not None and key != "acc" else ("same" if a == b else f"{b - a:+d}" if a is not None and b is not None else "—")]
        pa = sum(table.get(("paper_default", s), {}).get(key, 0) for s in (0, 1))
        pb = sum(table.get(("seminorm", s), {}).get(key, 0) for s in (0, 1))
        pooled = change(pa, pb) if pa and key != "acc" else "—"
        print(f"| {label} | " + " | ".join("—" if c is None else str(c) for c in cells) + f" | {pooled} |")
print("\nper-pass backward NFE (train / val), ours then theirs:")
for k in sorted(set(ours) | set(theirs)):
    print(k, "ours", ours.get(k, {}).get("train_pass_bwd"), ours.get(k, {}).get("val_pass_bwd"))
    print(k, "theirs", theirs.get(k, {}).get("train_pass_bwd"), theirs.get(k, {}).get("val_pass_bwd"))
