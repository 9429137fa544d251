#!/usr/bin/env bash
# The GPU checks of every issue, as one script for a short session on a GPU machine (run from the repository root).
#
#   OUT=<folder> bash runs/gpu_check.sh            # PY=python3 by default; parts run in this order, each logged
#
# 1 cuda-tests   every gradient method's float64 gradient on CUDA equals the CPU's (tests/test_cuda.py + the GQ and
#                reversible CUDA tests)
# 2 bench        `runs.bench` on CUDA: gradient methods on the small CNF and the width-2000 nested spheres (GQ vs
#                adjoint, issue 7); reversible vs direct vs checkpointing at 100 and 1000 steps (issue 8)
# 3 demo         `make demo`'s sweep on CUDA, and its table (issue 3)
# 4 smoke        each paper's smoke reproduction on CUDA (every task and method runs there; tables needing aeon or
#                librosa fail alone, with the reason, when those packages are absent)
# 5 overhead     `runs.bench --section overhead` on CUDA (harness vs bare torchdiffeq loop)
# The parts' time limits add up to under 10 minutes (one device command); a part cut by its limit is checkpointed
# (SIGTERM; killed 15 s later if still running) and resumes when the script runs again with the same WORK.
# Runs and logs go to $WORK (default /tmp/gpu_check); $OUT gets three files (the device tool returns few): summary.txt
# (one line per part: exit code and seconds), tables.md (demo table, bench tables, smoke sweep status) and logs.tgz
# (every log, result.json and bench table). About 8 minutes on one H200 (estimate); each part is bounded by `timeout`.
# A machine without hydra & co. gets them from wheels in .whl/ (`make gpu-wheels` here, then carry .whl).
set -uo pipefail
OUT=${OUT:-runs/gpu_check}
WORK=${WORK:-/tmp/gpu_check}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu tries the script on a machine without a GPU (the CUDA tests then skip)
mkdir -p "$OUT" "$WORK"
: >"$WORK/summary.txt"
if [ -d .whl ] && ! "$PY" -c "import hydra, torchsde, torchcde, sklearn, pytest" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 WANDB_MODE=offline WANDB_SILENT=true
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$WORK/gpu.txt" 2>&1

part() {  # part NAME SECONDS COMMAND...: run with a time limit, log, one summary line
  local name=$1 limit=$2 start
  shift 2
  start=$(date +%s)
  timeout -k 15 "$limit" "$@" >"$WORK/$name.log" 2>&1
  echo "$name: exit $? in $(($(date +%s) - start)) s" | tee -a "$WORK/summary.txt"
}

part cuda-tests 60 "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py \
  tests/test_gq.py::test_gq_on_cuda_matches_cpu tests/test_reversible.py::test_cuda_matches_cpu
part bench-methods 110 "$PY" -m runs.bench --device "$DEVICE" --section methods --problem 1 --problem 2 --repeats 3 \
  --out "$WORK/bench"
part bench-reversible 90 "$PY" -m runs.bench --device "$DEVICE" --section reversible --steps 100,1000 --out "$WORK/bench"
part demo 120 bash -c "$PY -m runs.train -m +experiment=demo method=adjoint norm=default,seminorm seed=0,1 \
  device=$DEVICE logger=none progress=false hydra.sweep.dir=$WORK/demo && $PY -m runs.train -m +experiment=demo \
  method=direct seed=0,1 device=$DEVICE logger=none progress=false hydra.sweep.dir=$WORK/demo && \
  $PY -m analysis.table $WORK/demo"
for paper in seminorm gq reversible; do
  part "smoke-$paper" 50 "$PY" -m runs.reproduce "$paper" --scale smoke --out "$WORK/smoke/$paper" logger=none \
    progress=false device=$DEVICE
  "$PY" -m analysis.status "$WORK/smoke/$paper" >>"$WORK/smoke-$paper.log" 2>&1
done
part bench-overhead 40 "$PY" -m runs.bench --device "$DEVICE" --section overhead --out "$WORK/bench"
{
  echo "# GPU check ($(date -u +%F), $(head -n 2 "$WORK/gpu.txt" | tail -n 1))"
  echo; echo '```'; cat "$WORK/summary.txt"; echo '```'
  echo; echo "## Demo on CUDA"; echo; tail -n 12 "$WORK/demo.log"
  cat "$WORK"/bench/*.md 2>/dev/null
  for paper in seminorm gq reversible; do echo; echo "## Smoke sweep status: $paper"; echo; tail -n 30 "$WORK/smoke-$paper.log"; done
} >"$OUT/tables.md"
cp "$WORK/summary.txt" "$OUT/summary.txt"
tar czf "$OUT/logs.tgz" -C "$WORK" --exclude='*.pt' --exclude='wandb' .
cat "$OUT/summary.txt"
